"""History events: what each state change records, in the GetDurableExecutionHistory shape."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from typing import Any

from durably.core.model import ErrorObject, Operation

TIMESTAMP_KEYS = frozenset({"EventTimestamp", "ScheduledEndTimestamp", "StartTimestamp", "EndTimestamp"})


def result(payload: str | None) -> dict[str, Any]:
    return {"Payload": payload, "Truncated": False} if payload is not None else {"Truncated": False}


def error(err: ErrorObject | None) -> dict[str, Any]:
    return {"Payload": (err or ErrorObject()).to_wire(), "Truncated": False}


def append(conn: sqlite3.Connection, arn: str, event_type: str, now: int, details: dict[str, Any],
           op: Operation | None = None) -> None:
    """Record one event; event ids count from 1 per execution."""
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
    conn.execute("INSERT INTO events VALUES (?, ?, ?)", (arn, seq, json.dumps(doc, separators=(",", ":"))))


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
