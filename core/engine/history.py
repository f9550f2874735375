"""History events: what each state change records, in the GetDurableExecutionHistory shape."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

from durably.core.model import ErrorObject, Operation
from pydantic_core import to_json

TIMESTAMP_KEYS = frozenset({"EventTimestamp", "ScheduledEndTimestamp", "NextAttemptTimestamp", "StartTimestamp",
                            "EndTimestamp", "StopTimestamp"})


def result(payload: str | None) -> dict[str, Any]:
    return {"Payload": payload, "Truncated": False} if payload is not None else {"Truncated": False}


def error(err: ErrorObject | None) -> dict[str, Any]:
    return {"Payload": (err or ErrorObject()).to_wire(), "Truncated": False}


_buffers: dict[tuple[int, str], EventBuffer] = {}


class EventBuffer:
    """The events of one execution within one transaction, numbered on from ``event_seq`` as read at
    its start. While the buffer is entered (``with``), :func:`append` on the same connection and
    execution adds to it instead of writing; the caller writes it with :meth:`flush` and stores
    :attr:`seq` as the new ``event_seq`` (two statements per transaction instead of two per event).
    Only for the write connection, which one thread at a time uses. On an exception the buffer is
    dropped with the rest of the transaction's work."""

    __slots__ = ("arn", "key", "rows", "seq")

    def __init__(self, conn: sqlite3.Connection, arn: str, seq: int) -> None:
        self.key = (id(conn), arn)
        self.arn = arn
        self.seq = seq
        self.rows: list[tuple[str, int, str]] = []

    def __enter__(self) -> EventBuffer:
        _buffers[self.key] = self
        return self

    def __exit__(self, *exc: object) -> None:
        del _buffers[self.key]

    def flush(self, conn: sqlite3.Connection) -> None:
        if self.rows:
            conn.executemany("INSERT INTO events VALUES (?, ?, ?)", self.rows)
            self.rows = []


def append(conn: sqlite3.Connection, arn: str, event_type: str, now: int, details: dict[str, Any],
           op: Operation | None = None) -> None:
    """Record one event; event ids count from 1 per execution."""
    buffer = _buffers.get((id(conn), arn)) if _buffers else None
    if buffer is not None:
        buffer.seq += 1
        seq = buffer.seq
    else:
        seq = conn.execute("UPDATE executions SET event_seq = event_seq + 1 WHERE arn = ? RETURNING event_seq",
                           (arn,)).fetchone()[0]
    doc: dict[str, Any] = {"EventType": event_type, "EventId": seq, "EventTimestamp": now}
    if op is not None:
        doc["Id"] = op.Id
        for key in ("Name", "ParentId", "SubType"):
            value = getattr(op, key)
            if value is not None:
                doc[key] = value
    doc[f"{event_type}Details"] = details
    if buffer is not None:
        buffer.rows.append((arn, seq, _encode(doc)))
    else:
        conn.execute("INSERT INTO events VALUES (?, ?, ?)", (arn, seq, _encode(doc)))


def _encode(doc: dict[str, Any]) -> str:
    """Compact JSON text of an event (pydantic-core's encoder: several times faster than json's)."""
    return to_json(doc).decode()


def render_timestamps(value: Any, style: str) -> Any:
    """Convert stored epoch-ms timestamps: ``iso`` (CLI JSON), ``epoch`` (seconds, REST) or ``ms``."""
    if style == "ms":
        return value
    if isinstance(value, dict):
        return {k: (_ts(v, style) if k in TIMESTAMP_KEYS and isinstance(v, int) else render_timestamps(v, style))
                for k, v in value.items()}
    if isinstance(value, list):
        return [render_timestamps(v, style) for v in value]
    return value


def _ts(ms: int, style: str) -> Any:
    if style == "epoch":
        return ms / 1000
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")
