"""The SQL both stores speak (:class:`SQLTx`, the ``StoreTx`` of ``stores.base``), written once.

Statements use ``?`` placeholders and the SQL that SQLite and PostgreSQL share (``ON CONFLICT``
upserts, ``RETURNING``, ``LIKE ... ESCAPE``). A database module subclasses :class:`SQLTx` for what
differs: how placeholders are written, row locks, and the journal's layout.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Sequence
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

COLUMNS = tuple(f.name for f in fields(ExecutionRow))
"""The ``executions`` columns, in :class:`ExecutionRow`'s order."""
SELECT = f"SELECT {', '.join(COLUMNS)} FROM executions"
SELECT_WITHOUT_INPUT = f"SELECT {', '.join('NULL' if c == 'input' else c for c in COLUMNS)} FROM executions"
INSERT = (f"INSERT INTO executions({', '.join(COLUMNS[1:])}) "
          f"VALUES ({', '.join('?' * (len(COLUMNS) - 1))}) RETURNING key")
SIDE_TABLES = ("timers", "callbacks", "invocation_errors", "logs")
"""The tables that keep rows of an execution by its key, besides ``executions`` and the journal."""


def execution_row(values: Sequence[Any]) -> ExecutionRow:
    row = ExecutionRow(*values)
    row.durable, row.ready = bool(row.durable), bool(row.ready)
    row.updated_ids = json.loads(row.updated_ids) if row.updated_ids != "[]" else []  # type: ignore[arg-type,comparison-overlap]
    return row


def stored(name: str, value: Any) -> Any:
    """A column's value as the database keeps it."""
    if name == "updated_ids":
        return json.dumps(value)
    if name in ("ready", "durable"):
        return int(value)
    return value


def like(text: str) -> str:
    """``text`` as a literal part of a LIKE pattern (escaped with backslashes)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def marks(n: int) -> str:
    return ",".join("?" * n)


class SQLTx(ABC):
    """The rows over one connection, inside a transaction the store began (or a read)."""

    __slots__ = ("conn",)

    LOCKS: dict[Any, str] = {False: "", True: "", "skip": ""}
    """What a :data:`~durably.core.engine.stores.base.Lock` adds to a SELECT."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def sql(self, statement: str, args: Sequence[Any] = ()) -> Any:
        """Run one statement; its cursor."""
        return self.conn.execute(statement, args)

    @abstractmethod
    def sql_many(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for each of ``rows``."""

    def one(self, statement: str, args: Sequence[Any] = ()) -> Any:
        """The first row of a query, or None."""
        return self.sql(statement, args).fetchone()

    # ---------------------------------------------------------------- executions
    def execution(self, ref: str | int, lock: Lock = False) -> ExecutionRow | None:
        column = "key" if isinstance(ref, int) else "arn"
        values = self.one(f"{SELECT} WHERE {column} = ?{self.LOCKS[lock]}", (ref,))
        return execution_row(values) if values else None

    def execution_with_tail(self, arn: str, lock: Lock = False, with_input: bool = True,
                            ) -> tuple[ExecutionRow | None, JournalRow | None]:
        values = self.one(f"{SELECT if with_input else SELECT_WITHOUT_INPUT} WHERE arn = ?{self.LOCKS[lock]}", (arn,))
        row = execution_row(values) if values else None
        return row, (self.journal_tail(row.key) if row is not None else None)

    def execution_input(self, key: int) -> str | None:
        found = self.one("SELECT input FROM executions WHERE key = ?", (key,))
        return found[0] if found else None

    def named_execution(self, function_name: str, name: str) -> ExecutionRow | None:
        values = self.one(f"{SELECT} WHERE function_name = ? AND name = ?", (function_name, name))
        return execution_row(values) if values else None

    def insert_execution(self, row: ExecutionRow) -> int:
        return int(self.one(INSERT, [stored(name, getattr(row, name)) for name in COLUMNS[1:]])[0])

    def update_execution(self, key: int, **changes: Any) -> None:
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {', '.join(sorted(unknown))} of an execution")
        assignments = ", ".join(f"{name} = ?" for name in changes)
        self.sql(f"UPDATE executions SET {assignments} WHERE key = ?",
                 [*(stored(n, v) for n, v in changes.items()), key])

    def ready_executions(self, limit: int, skip_functions: Collection[str] = (),
                         arn: str | None = None) -> list[str]:
        skip = tuple(skip_functions)
        unless = f" AND function_name NOT IN ({marks(len(skip))})" if skip else ""
        only = " AND arn = ?" if arn is not None else ""
        return [r[0] for r in self.sql(
            f"SELECT arn FROM executions WHERE ready = 1 AND status = 'RUNNING' AND lease_owner IS NULL{only}{unless}"
            " LIMIT ?", (*((arn,) if arn is not None else ()), *skip, limit))]

    def leased_executions(self) -> list[ExecutionRow]:
        return [execution_row(v) for v in self.sql(f"{SELECT} WHERE lease_owner IS NOT NULL AND status = 'RUNNING'")]

    def executions_of(self, function_name: str, running_only: bool = False, limit: int | None = None) -> list[str]:
        running = " AND status = 'RUNNING'" if running_only else ""
        bounded = " LIMIT ?" if limit is not None else ""
        return [r[0] for r in self.sql(f"SELECT arn FROM executions WHERE function_name = ?{running}{bounded}",
                                       (function_name,) if limit is None else (function_name, limit))]

    def expired_executions(self, now: int) -> list[int]:
        return [r[0] for r in self.sql(
            "SELECT key FROM executions WHERE end_ts IS NOT NULL AND end_ts + retention_days * 86400000 < ?", (now,))]

    def redrive_count(self, arn: str) -> int:
        return int(self.one("SELECT count(*) FROM executions WHERE redrive_of = ?", (arn,))[0])

    def list_executions(self, query: ExecutionQuery) -> list[ExecutionSummary]:
        where: list[str] = ["durable = 1"]
        args: list[Any] = []
        if query.search:
            pattern = f"%{like(query.search)}%"
            where.append("(name LIKE ? ESCAPE '\\' OR arn LIKE ? ESCAPE '\\')")
            args.extend((pattern, pattern))
        for column, value in (("function_name", query.function_name), ("name", query.name)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if query.statuses:
            where.append(f"status IN ({marks(len(query.statuses))})")
            args.extend(query.statuses)
        if query.started_after is not None:
            where.append("start_ts >= ?")
            args.append(query.started_after)
        if query.started_before is not None:
            where.append("start_ts < ?")
            args.append(query.started_before)
        order = "DESC" if query.newest_first else "ASC"
        return [ExecutionSummary(*r) for r in self.sql(
            f"SELECT arn, name, function_name, status, start_ts, end_ts FROM executions WHERE {' AND '.join(where)}"
            f" ORDER BY start_ts {order}, arn {order} LIMIT ? OFFSET ?", (*args, query.limit, query.offset))]

    def find_executions(self, ref: str, limit: int) -> list[ExecutionSummary]:
        return [ExecutionSummary(*r) for r in self.sql(
            "SELECT arn, name, function_name, status, start_ts, end_ts FROM executions WHERE durable = 1 AND"
            " (arn = ? OR name = ? OR exec_id LIKE ? ESCAPE '\\') ORDER BY start_ts DESC LIMIT ?",
            (ref, ref, like(ref) + "%", limit))]

    def function_names(self) -> list[str]:
        return [r[0] for r in self.sql(
            "SELECT DISTINCT function_name FROM executions WHERE durable = 1 ORDER BY function_name")]

    def delete_executions(self, keys: list[int]) -> None:
        for key in keys:
            self.delete_journal(key)
            for table in (*SIDE_TABLES, "executions"):
                self.sql(f"DELETE FROM {table} WHERE key = ?", (key,))

    # ---------------------------------------------------------------- journal (the layout is the database's)
    @abstractmethod
    def journal(self, key: int, after: int = 0, from_event: int = 0) -> list[JournalRow]:
        """Rows of the journal (``StoreTx.journal``)."""

    @abstractmethod
    def journal_ops(self, key: int, after: int = 0) -> list[str]:
        """The rows' ``ops`` columns (``StoreTx.journal_ops``)."""

    @abstractmethod
    def journal_backwards(self, key: int) -> Iterator[JournalRow]:
        """Rows from the last to the first (``StoreTx.journal_backwards``)."""

    @abstractmethod
    def journal_tail(self, key: int) -> JournalRow | None:
        """The last row's position, last event and writer (``StoreTx.journal_tail``)."""

    @abstractmethod
    def append_journal(self, key: int, row: JournalRow) -> None:
        """Add a journal row (``StoreTx.append_journal``)."""

    @abstractmethod
    def delete_journal(self, key: int) -> None:
        """Delete the execution's journal rows."""

    # ---------------------------------------------------------------- timers
    def set_timer(self, key: int, op_id: str, kind: str, due: int, period: int | None = None) -> None:
        self.sql("INSERT INTO timers VALUES (?, ?, ?, ?, ?) ON CONFLICT(key, op_id, kind)"
                 " DO UPDATE SET due = excluded.due, period = excluded.period", (key, op_id, kind, due, period))

    def timer(self, key: int, op_id: str, kind: str) -> tuple[int, int | None] | None:
        found = self.one("SELECT due, period FROM timers WHERE key = ? AND op_id = ? AND kind = ?", (key, op_id, kind))
        return (found[0], found[1]) if found else None

    def delete_timers(self, key: int, op_id: str | None = None) -> None:
        if op_id is None:
            self.sql("DELETE FROM timers WHERE key = ?", (key,))
        else:
            self.sql("DELETE FROM timers WHERE key = ? AND op_id = ?", (key, op_id))

    def take_timer(self, key: int, op_id: str, kind: str, now: int) -> bool:
        return self.one("DELETE FROM timers WHERE key = ? AND op_id = ? AND kind = ? AND due <= ? RETURNING 1",
                        (key, op_id, kind, now)) is not None

    def due_timers(self, now: int, limit: int) -> list[tuple[int, str, str]]:
        return [(k, o, kind) for k, o, kind in self.sql(
            "SELECT key, op_id, kind FROM timers WHERE due <= ? ORDER BY due LIMIT ?", (now, limit))]

    def next_due(self, kinds: Collection[str] | None = None) -> int | None:
        if kinds is None:
            return self.one("SELECT min(due) FROM timers")[0]  # type: ignore[no-any-return]
        chosen = tuple(kinds)
        return self.one(f"SELECT min(due) FROM timers WHERE kind IN ({marks(len(chosen))})",  # type: ignore[no-any-return]
                        chosen)[0]

    def has_timers(self, key: int, except_kind: str) -> bool:
        return self.one("SELECT 1 FROM timers WHERE key = ? AND kind != ? LIMIT 1", (key, except_kind)) is not None

    # ---------------------------------------------------------------- callbacks
    def add_callback(self, callback_id: str, key: int, op_id: str) -> None:
        self.sql("INSERT INTO callbacks VALUES (?, ?, ?, 1)", (callback_id, key, op_id))

    def callback(self, callback_id: str) -> tuple[int, str] | None:
        found = self.one("SELECT key, op_id FROM callbacks WHERE callback_id = ?", (callback_id,))
        return (found[0], found[1]) if found else None

    def close_callback(self, callback_id: str) -> None:
        self.sql("UPDATE callbacks SET open = 0 WHERE callback_id = ?", (callback_id,))

    def open_callbacks(self, key: int | None = None) -> list[tuple[int, str]]:
        only = " AND c.key = ?" if key is not None else ""
        return [(k, o) for k, o in self.sql(
            "SELECT c.key, c.op_id FROM callbacks c JOIN executions e ON e.key = c.key"
            f" WHERE c.open = 1 AND e.status = 'RUNNING'{only}", (key,) if key is not None else ())]

    # ---------------------------------------------------------------- invocation errors
    def set_invocation_error(self, key: int, ts: int, owner: str, error: str) -> None:
        self.sql("INSERT INTO invocation_errors VALUES (?, ?, ?, ?) ON CONFLICT(key)"
                 " DO UPDATE SET ts = excluded.ts, owner = excluded.owner, error = excluded.error",
                 (key, ts, owner, error))

    def clear_invocation_error(self, key: int) -> None:
        self.sql("DELETE FROM invocation_errors WHERE key = ?", (key,))

    def invocation_error(self, key: int) -> tuple[int, str, str] | None:
        found = self.one("SELECT ts, owner, error FROM invocation_errors WHERE key = ?", (key,))
        return (found[0], found[1], found[2]) if found else None

    # ---------------------------------------------------------------- logs
    def add_logs(self, rows: list[tuple[str, int, str, str, str]]) -> None:
        self.sql_many("INSERT INTO logs(key, ts, level, message, fields)"
                      " SELECT key, ?, ?, ?, ? FROM executions WHERE arn = ?",
                      [(ts, level, message, extra, arn) for arn, ts, level, message, extra in rows])

    def logs(self, key: int, after: int, limit: int) -> list[LogRow]:
        return [LogRow(*r) for r in self.sql(
            "SELECT id, ts, level, message, fields FROM logs WHERE key = ? AND id > ? ORDER BY id LIMIT ?",
            (key, after, limit))]

    # ---------------------------------------------------------------- functions, versions, aliases
    def save_function(self, spec: FunctionSpec, replace: bool = True) -> None:
        conflict = ("DO UPDATE SET durable = excluded.durable, ref = excluded.ref, execution_timeout = excluded"
                    ".execution_timeout, retention_days = excluded.retention_days" if replace else "DO NOTHING")
        self.sql(f"INSERT INTO functions VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) {conflict}",
                 (spec.name, int(spec.durable), spec.ref, spec.execution_timeout, spec.retention_days))

    def function(self, name: str) -> FunctionSpec | None:
        found = self.one("SELECT name, durable, ref, execution_timeout, retention_days FROM functions WHERE name = ?",
                         (name,))
        return FunctionSpec(found[0], bool(found[1]), found[2], found[3], found[4]) if found else None

    def delete_function(self, name: str) -> None:
        for table, column in (("versions", "function"), ("code_archives", "function"), ("aliases", "function"),
                              ("functions", "name")):
            self.sql(f"DELETE FROM {table} WHERE {column} = ?", (name,))

    def last_version(self, function_name: str) -> int:
        return int(self.one("SELECT coalesce(max(version), 0) FROM versions WHERE function = ?", (function_name,))[0])

    def reserve_version(self, function_name: str, version: int, created_ts: int, description: str) -> None:
        self.sql("INSERT INTO versions VALUES (?, ?, '', NULL, ?, ?)",
                 (function_name, version, created_ts, description))

    def publish_version(self, function_name: str, version: int, ref: str, code_sha256: str) -> None:
        self.sql("UPDATE versions SET ref = ?, code_sha256 = ? WHERE function = ? AND version = ?",
                 (ref, code_sha256, function_name, version))

    def drop_version(self, function_name: str, version: int) -> None:
        self.sql("DELETE FROM versions WHERE function = ? AND version = ?", (function_name, version))
        self.sql("DELETE FROM code_archives WHERE function = ? AND version = ?", (function_name, version))

    def save_code_archive(self, function_name: str, version: int, archive: bytes) -> None:
        self.sql("INSERT INTO code_archives VALUES (?, ?, ?)", (function_name, version, archive))

    def code_archive(self, function_name: str, version: int) -> tuple[bytes, str] | None:
        found = self.one("SELECT a.archive, v.code_sha256 FROM code_archives a JOIN versions v"
                         " ON v.function = a.function AND v.version = a.version"
                         " WHERE a.function = ? AND a.version = ? AND v.code_sha256 IS NOT NULL",
                         (function_name, version))
        return (bytes(found[0]), str(found[1])) if found else None

    def versions(self, function_name: str) -> list[VersionRow]:
        return [VersionRow(*r) for r in self.sql(
            "SELECT version, ref, code_sha256, created_ts, description FROM versions"
            " WHERE function = ? AND code_sha256 IS NOT NULL ORDER BY version", (function_name,))]

    def version_ref(self, function_name: str, version: int) -> str | None:
        found = self.one("SELECT ref FROM versions WHERE function = ? AND version = ? AND code_sha256 IS NOT NULL",
                         (function_name, version))
        return found[0] if found else None

    def version_count(self, function_name: str) -> int:
        return int(self.one("SELECT count(*) FROM versions WHERE function = ?", (function_name,))[0])

    def set_alias(self, function_name: str, alias: str, version: int) -> None:
        self.sql("INSERT INTO aliases VALUES (?, ?, ?) ON CONFLICT(function, alias) DO UPDATE SET version ="
                 " excluded.version", (function_name, alias, version))

    def alias(self, function_name: str, alias: str) -> int | None:
        found = self.one("SELECT version FROM aliases WHERE function = ? AND alias = ?", (function_name, alias))
        return int(found[0]) if found else None

    def aliases(self, function_name: str) -> list[tuple[str, int]]:
        return [(a, v) for a, v in self.sql(
            "SELECT alias, version FROM aliases WHERE function = ? ORDER BY alias", (function_name,))]
