"""The SQLite store's rows (:class:`SQLiteTx`) and its move to the journal.

The journal is one b-tree: a row's id is ``key << 32 | seq``, so an execution's rows are one
range and an append goes to the end of it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from durably.core.engine.stores.base import JournalRow
from durably.core.engine.stores.sql_tx import COLUMNS, SQLTx

SEQ_BITS = 32


def _first(key: int) -> int:
    return key << SEQ_BITS


class SQLiteTx(SQLTx):
    """The rows over one SQLite connection (SQLite serialises writers: no row locks)."""

    __slots__ = ()

    def sql_many(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(statement, rows)

    def journal(self, key: int, after: int = 0, from_event: int = 0) -> list[JournalRow]:
        return [JournalRow(i & 0xFFFFFFFF, ops, events, last, writer) for i, ops, events, last, writer in
                self.conn.execute("SELECT id, ops, events, last_event, writer FROM journal WHERE id > ? AND id < ?"
                                  " AND last_event >= ? ORDER BY id",
                                  (_first(key) + after, _first(key + 1), from_event))]

    def journal_ops(self, key: int, after: int = 0) -> list[str]:
        return [ops for ops, in self.conn.execute("SELECT ops FROM journal WHERE id > ? AND id < ? ORDER BY id",
                                                  (_first(key) + after, _first(key + 1)))]

    def journal_backwards(self, key: int) -> Iterator[JournalRow]:
        for i, ops, events, last, writer in self.conn.execute(
                "SELECT id, ops, events, last_event, writer FROM journal WHERE id > ? AND id < ? ORDER BY id DESC",
                (_first(key), _first(key + 1))):
            yield JournalRow(i & 0xFFFFFFFF, ops, events, last, writer)

    def journal_tail(self, key: int) -> JournalRow | None:
        found = self.conn.execute("SELECT id, last_event, writer FROM journal WHERE id > ? AND id < ?"
                                  " ORDER BY id DESC LIMIT 1", (_first(key), _first(key + 1))).fetchone()
        return JournalRow(found[0] & 0xFFFFFFFF, "", "", found[1], found[2]) if found else None

    def append_journal(self, key: int, row: JournalRow) -> None:
        self.conn.execute("INSERT INTO journal VALUES (?, ?, ?, ?, ?)",
                          (_first(key) + row.seq, row.ops, row.events, row.last_event, row.writer))

    def delete_journal(self, key: int) -> None:
        self.conn.execute("DELETE FROM journal WHERE id BETWEEN ? AND ?", (_first(key), _first(key + 1) - 1))


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
