"""The SQLite store's rows (:class:`SQLiteTx`, the ``StoreTx`` of ``stores.base``) and its move to the journal.

The journal is one b-tree: a row's id is ``key << 32 | seq``, so an execution's rows are one
range and an append goes to the end of it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterator
from dataclasses import fields
from typing import Any

from durably.core.engine.functions import FunctionSpec
from durably.core.engine.stores.base import (
    UPDATABLE,
    ExecutionQuery,
    ExecutionRow,
    ExecutionSummary,
    JournalRow,
    Lock,
    LogRow,
    VersionRow,
)

SEQ_BITS = 32
COLUMNS = tuple(f.name for f in fields(ExecutionRow))
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM executions"
_INSERT = (f"INSERT INTO executions({', '.join(COLUMNS[1:])}) "
           f"VALUES ({', '.join('?' * (len(COLUMNS) - 1))})")


def _first(key: int) -> int:
    return key << SEQ_BITS


def _execution(values: tuple[Any, ...]) -> ExecutionRow:
    row = ExecutionRow(*values)
    row.durable, row.ready = bool(row.durable), bool(row.ready)
    row.updated_ids = json.loads(row.updated_ids)  # type: ignore[arg-type]
    return row


def _stored(name: str, value: Any) -> Any:
    if name == "updated_ids":
        return json.dumps(value)
    if name == "ready":
        return int(value)
    return value


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SQLiteTx:
    """The rows over one connection (inside a transaction the store began)."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # ---------------------------------------------------------------- executions
    def execution(self, ref: str | int, lock: Lock = False) -> ExecutionRow | None:
        column = "key" if isinstance(ref, int) else "arn"
        values = self.conn.execute(f"{_SELECT} WHERE {column} = ?", (ref,)).fetchone()
        return _execution(values) if values else None

    def named_execution(self, function_name: str, name: str) -> ExecutionRow | None:
        values = self.conn.execute(f"{_SELECT} WHERE function_name = ? AND name = ?", (function_name, name)).fetchone()
        return _execution(values) if values else None

    def insert_execution(self, row: ExecutionRow) -> int:
        values = [_stored(name, getattr(row, name)) for name in COLUMNS[1:]]
        cursor = self.conn.execute(_INSERT, values)
        return int(cursor.lastrowid or 0)

    def update_execution(self, key: int, **changes: Any) -> None:
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {', '.join(sorted(unknown))} of an execution")
        assignments = ", ".join(f"{name} = ?" for name in changes)
        self.conn.execute(f"UPDATE executions SET {assignments} WHERE key = ?",
                          [*(_stored(n, v) for n, v in changes.items()), key])

    def ready_executions(self, limit: int, skip_functions: Collection[str] = (),
                         arn: str | None = None) -> list[str]:
        skip = tuple(skip_functions)
        unless = f" AND function_name NOT IN ({','.join('?' * len(skip))})" if skip else ""
        only = " AND arn = ?" if arn is not None else ""
        return [r[0] for r in self.conn.execute(
            f"SELECT arn FROM executions WHERE ready = 1 AND status = 'RUNNING' AND lease_owner IS NULL{only}{unless}"
            " LIMIT ?", (*((arn,) if arn is not None else ()), *skip, limit))]

    def leased_executions(self) -> list[ExecutionRow]:
        return [_execution(v) for v in self.conn.execute(
            f"{_SELECT} WHERE lease_owner IS NOT NULL AND status = 'RUNNING'")]

    def executions_of(self, function_name: str, running_only: bool = False, limit: int | None = None) -> list[str]:
        running = " AND status = 'RUNNING'" if running_only else ""
        return [r[0] for r in self.conn.execute(
            f"SELECT arn FROM executions WHERE function_name = ?{running} LIMIT ?",
            (function_name, -1 if limit is None else limit))]

    def expired_executions(self, now: int) -> list[int]:
        return [r[0] for r in self.conn.execute(
            "SELECT key FROM executions WHERE end_ts IS NOT NULL AND end_ts + retention_days * 86400000 < ?", (now,))]

    def redrive_count(self, arn: str) -> int:
        return int(self.conn.execute("SELECT count(*) FROM executions WHERE redrive_of = ?", (arn,)).fetchone()[0])

    def list_executions(self, query: ExecutionQuery) -> list[ExecutionSummary]:
        where: list[str] = ["durable = 1"]
        args: list[Any] = []
        if query.search:
            pattern = f"%{_like(query.search)}%"
            where.append("(name LIKE ? ESCAPE '\\' OR arn LIKE ? ESCAPE '\\')")
            args.extend((pattern, pattern))
        for column, value in (("function_name", query.function_name), ("name", query.name)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if query.statuses:
            where.append(f"status IN ({','.join('?' * len(query.statuses))})")
            args.extend(query.statuses)
        if query.started_after is not None:
            where.append("start_ts >= ?")
            args.append(query.started_after)
        if query.started_before is not None:
            where.append("start_ts < ?")
            args.append(query.started_before)
        order = "DESC" if query.newest_first else "ASC"
        return [ExecutionSummary(*r) for r in self.conn.execute(
            f"SELECT arn, name, function_name, status, start_ts, end_ts FROM executions WHERE {' AND '.join(where)}"
            f" ORDER BY start_ts {order}, arn {order} LIMIT ? OFFSET ?", (*args, query.limit, query.offset))]

    def find_executions(self, ref: str, limit: int) -> list[ExecutionSummary]:
        return [ExecutionSummary(*r) for r in self.conn.execute(
            "SELECT arn, name, function_name, status, start_ts, end_ts FROM executions WHERE durable = 1 AND"
            " (arn = ? OR name = ? OR exec_id LIKE ? ESCAPE '\\') ORDER BY start_ts DESC LIMIT ?",
            (ref, ref, _like(ref) + "%", limit))]

    def function_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT DISTINCT function_name FROM executions WHERE durable = 1 ORDER BY function_name")]

    def delete_executions(self, keys: list[int]) -> None:
        for key in keys:
            self.conn.execute("DELETE FROM journal WHERE id BETWEEN ? AND ?", (_first(key), _first(key + 1) - 1))
            for table in ("timers", "callbacks", "invocation_errors", "logs", "executions"):
                self.conn.execute(f"DELETE FROM {table} WHERE key = ?", (key,))

    # ---------------------------------------------------------------- journal
    def journal(self, key: int, after: int = 0, from_event: int = 0) -> list[JournalRow]:
        return [JournalRow(i & 0xFFFFFFFF, ops, events, last, writer) for i, ops, events, last, writer in
                self.conn.execute("SELECT id, ops, events, last_event, writer FROM journal WHERE id > ? AND id < ?"
                                  " AND last_event >= ? ORDER BY id",
                                  (_first(key) + after, _first(key + 1), from_event))]

    def journal_backwards(self, key: int) -> Iterator[JournalRow]:
        for i, ops, events, last, writer in self.conn.execute(
                "SELECT id, ops, events, last_event, writer FROM journal WHERE id > ? AND id < ? ORDER BY id DESC",
                (_first(key), _first(key + 1))):
            yield JournalRow(i & 0xFFFFFFFF, ops, events, last, writer)

    def journal_tail(self, key: int) -> JournalRow | None:
        return next(self.journal_backwards(key), None)

    def append_journal(self, key: int, row: JournalRow) -> None:
        self.conn.execute("INSERT INTO journal VALUES (?, ?, ?, ?, ?)",
                          (_first(key) + row.seq, row.ops, row.events, row.last_event, row.writer))

    # ---------------------------------------------------------------- timers
    def set_timer(self, key: int, op_id: str, kind: str, due: int, period: int | None = None) -> None:
        self.conn.execute("INSERT OR REPLACE INTO timers VALUES (?, ?, ?, ?, ?)", (key, op_id, kind, due, period))

    def timer(self, key: int, op_id: str, kind: str) -> tuple[int, int | None] | None:
        found = self.conn.execute("SELECT due, period FROM timers WHERE key = ? AND op_id = ? AND kind = ?",
                                  (key, op_id, kind)).fetchone()
        return (found[0], found[1]) if found else None

    def delete_timers(self, key: int, op_id: str | None = None) -> None:
        if op_id is None:
            self.conn.execute("DELETE FROM timers WHERE key = ?", (key,))
        else:
            self.conn.execute("DELETE FROM timers WHERE key = ? AND op_id = ?", (key, op_id))

    def take_timer(self, key: int, op_id: str, kind: str, now: int) -> bool:
        return self.conn.execute("DELETE FROM timers WHERE key = ? AND op_id = ? AND kind = ? AND due <= ?"
                                 " RETURNING 1", (key, op_id, kind, now)).fetchone() is not None

    def due_timers(self, now: int, limit: int) -> list[tuple[int, str, str]]:
        return [(k, o, kind) for k, o, kind in self.conn.execute(
            "SELECT key, op_id, kind FROM timers WHERE due <= ? ORDER BY due LIMIT ?", (now, limit))]

    def next_due(self, kinds: Collection[str] | None = None) -> int | None:
        if kinds is None:
            return self.conn.execute("SELECT min(due) FROM timers").fetchone()[0]  # type: ignore[no-any-return]
        chosen = tuple(kinds)
        return self.conn.execute(  # type: ignore[no-any-return]
            f"SELECT min(due) FROM timers WHERE kind IN ({','.join('?' * len(chosen))})", chosen).fetchone()[0]

    def has_timers(self, key: int, except_kind: str) -> bool:
        return self.conn.execute("SELECT 1 FROM timers WHERE key = ? AND kind != ? LIMIT 1",
                                 (key, except_kind)).fetchone() is not None

    # ---------------------------------------------------------------- callbacks
    def add_callback(self, callback_id: str, key: int, op_id: str) -> None:
        self.conn.execute("INSERT INTO callbacks VALUES (?, ?, ?, 1)", (callback_id, key, op_id))

    def callback(self, callback_id: str) -> tuple[int, str] | None:
        found = self.conn.execute("SELECT key, op_id FROM callbacks WHERE callback_id = ?", (callback_id,)).fetchone()
        return (found[0], found[1]) if found else None

    def close_callback(self, callback_id: str) -> None:
        self.conn.execute("UPDATE callbacks SET open = 0 WHERE callback_id = ?", (callback_id,))

    def open_callbacks(self, key: int | None = None) -> list[tuple[int, str]]:
        only = " AND c.key = ?" if key is not None else ""
        return [(k, o) for k, o in self.conn.execute(
            "SELECT c.key, c.op_id FROM callbacks c JOIN executions e ON e.key = c.key"
            f" WHERE c.open = 1 AND e.status = 'RUNNING'{only}", (key,) if key is not None else ())]

    # ---------------------------------------------------------------- invocation errors
    def set_invocation_error(self, key: int, ts: int, owner: str, error: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO invocation_errors VALUES (?, ?, ?, ?)", (key, ts, owner, error))

    def clear_invocation_error(self, key: int) -> None:
        self.conn.execute("DELETE FROM invocation_errors WHERE key = ?", (key,))

    def invocation_error(self, key: int) -> tuple[int, str, str] | None:
        found = self.conn.execute("SELECT ts, owner, error FROM invocation_errors WHERE key = ?", (key,)).fetchone()
        return (found[0], found[1], found[2]) if found else None

    # ---------------------------------------------------------------- logs
    def add_logs(self, rows: list[tuple[str, int, str, str, str]]) -> None:
        self.conn.executemany("INSERT INTO logs(key, ts, level, message, fields)"
                              " SELECT key, ?, ?, ?, ? FROM executions WHERE arn = ?",
                              [(ts, level, message, extra, arn) for arn, ts, level, message, extra in rows])

    def logs(self, key: int, after: int, limit: int) -> list[LogRow]:
        return [LogRow(*r) for r in self.conn.execute(
            "SELECT id, ts, level, message, fields FROM logs WHERE key = ? AND id > ? ORDER BY id LIMIT ?",
            (key, after, limit))]

    # ---------------------------------------------------------------- functions, versions, aliases
    def save_function(self, spec: FunctionSpec, replace: bool = True) -> None:
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        self.conn.execute(f"{verb} INTO functions VALUES (?, ?, ?, ?, ?)",
                          (spec.name, int(spec.durable), spec.ref, spec.execution_timeout, spec.retention_days))

    def function(self, name: str) -> FunctionSpec | None:
        found = self.conn.execute("SELECT name, durable, ref, execution_timeout, retention_days FROM functions"
                                  " WHERE name = ?", (name,)).fetchone()
        return FunctionSpec(found[0], bool(found[1]), found[2], found[3], found[4]) if found else None

    def delete_function(self, name: str) -> None:
        for table, column in (("versions", "function"), ("aliases", "function"), ("functions", "name")):
            self.conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (name,))

    def last_version(self, function_name: str) -> int:
        return int(self.conn.execute("SELECT coalesce(max(version), 0) FROM versions WHERE function = ?",
                                     (function_name,)).fetchone()[0])

    def reserve_version(self, function_name: str, version: int, created_ts: int, description: str) -> None:
        self.conn.execute("INSERT INTO versions VALUES (?, ?, '', NULL, ?, ?)",
                          (function_name, version, created_ts, description))

    def publish_version(self, function_name: str, version: int, ref: str, code_sha256: str) -> None:
        self.conn.execute("UPDATE versions SET ref = ?, code_sha256 = ? WHERE function = ? AND version = ?",
                          (ref, code_sha256, function_name, version))

    def drop_version(self, function_name: str, version: int) -> None:
        self.conn.execute("DELETE FROM versions WHERE function = ? AND version = ?", (function_name, version))

    def versions(self, function_name: str) -> list[VersionRow]:
        return [VersionRow(*r) for r in self.conn.execute(
            "SELECT version, ref, code_sha256, created_ts, description FROM versions"
            " WHERE function = ? AND code_sha256 IS NOT NULL ORDER BY version", (function_name,))]

    def version_ref(self, function_name: str, version: int) -> str | None:
        found = self.conn.execute("SELECT ref FROM versions WHERE function = ? AND version = ?"
                                  " AND code_sha256 IS NOT NULL", (function_name, version)).fetchone()
        return found[0] if found else None

    def version_count(self, function_name: str) -> int:
        return int(self.conn.execute("SELECT count(*) FROM versions WHERE function = ?",
                                     (function_name,)).fetchone()[0])

    def set_alias(self, function_name: str, alias: str, version: int) -> None:
        self.conn.execute("INSERT OR REPLACE INTO aliases VALUES (?, ?, ?)", (function_name, alias, version))

    def alias(self, function_name: str, alias: str) -> int | None:
        found = self.conn.execute("SELECT version FROM aliases WHERE function = ? AND alias = ?",
                                  (function_name, alias)).fetchone()
        return int(found[0]) if found else None

    def aliases(self, function_name: str) -> list[tuple[str, int]]:
        return [(a, v) for a, v in self.conn.execute(
            "SELECT alias, version FROM aliases WHERE function = ? ORDER BY alias", (function_name,))]


_OLD_COLUMNS = [c for c in COLUMNS if c not in ("key", "invocation_seq")]


def migrate_to_7(conn: sqlite3.Connection) -> None:
    """Schema 6 → 7 (inside the caller's transaction): executions get integer keys, and each
    execution's operations and events become one journal row."""
    from durably.core.engine.stores.sqlite import SCHEMA  # the current tables, created beside the old ones

    conn.execute("ALTER TABLE executions RENAME TO executions_6")
    for table in ("timers", "invocation_errors", "logs"):
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_6")
    for name, in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").fetchall():
        conn.execute(f"DROP INDEX {name}")
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    columns = ", ".join(_OLD_COLUMNS)
    conn.execute(f"INSERT INTO executions({columns}) SELECT {columns} FROM executions_6 ORDER BY start_ts")
    for key, arn in conn.execute("SELECT key, arn FROM executions").fetchall():
        ops = [doc for (doc,) in conn.execute("SELECT doc FROM operations WHERE arn = ? ORDER BY seq", (arn,))]
        events = conn.execute("SELECT event_id, doc FROM events WHERE arn = ? ORDER BY event_id", (arn,)).fetchall()
        conn.execute("INSERT INTO journal VALUES (?, ?, ?, ?, 0)",
                     (_first(key) + 1, "\n".join(ops), "\n".join(doc for _, doc in events),
                      events[-1][0] if events else 0))
    conn.execute("UPDATE executions SET invocation_seq = 1")
    conn.execute("INSERT INTO callbacks SELECT o.callback_id, e.key, o.id,"
                 " json_extract(o.doc, '$.Status') = 'STARTED' FROM operations o JOIN executions e ON e.arn = o.arn"
                 " WHERE o.callback_id IS NOT NULL")
    conn.execute("INSERT INTO timers SELECT e.key, t.op_id, t.kind, t.due, t.period FROM timers_6 t"
                 " JOIN executions e ON e.arn = t.arn")
    conn.execute("INSERT INTO invocation_errors SELECT e.key, p.ts, p.owner, p.error FROM invocation_errors_6 p"
                 " JOIN executions e ON e.arn = p.arn")
    conn.execute("INSERT INTO logs(id, key, ts, level, message, fields) SELECT l.id, e.key, l.ts, l.level,"
                 " l.message, l.fields FROM logs_6 l JOIN executions e ON e.arn = l.arn")
    for table in ("operations", "events", "executions_6", "timers_6", "invocation_errors_6", "logs_6"):
        conn.execute(f"DROP TABLE {table}")
