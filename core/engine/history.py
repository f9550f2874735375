"""History events: what each state change records, in the GetDurableExecutionHistory shape."""

from __future__ import annotations

import datetime as dt
from typing import Any

from durably.core.model import ErrorObject, Operation
from pydantic_core import to_json

TIMESTAMP_KEYS = frozenset({"EventTimestamp", "ScheduledEndTimestamp", "NextAttemptTimestamp", "StartTimestamp",
                            "EndTimestamp", "StopTimestamp"})


def result(payload: str | None) -> dict[str, Any]:
    return {"Payload": payload, "Truncated": False} if payload is not None else {"Truncated": False}


def error(err: ErrorObject | None) -> dict[str, Any]:
    return {"Payload": (err or ErrorObject()).to_wire(), "Truncated": False}


def event_doc(event_id: int, event_type: str, now: int, details: dict[str, Any], op: Operation | None = None) -> str:
    """One history event's document (compact JSON); event ids count from 1 per execution."""
    doc: dict[str, Any] = {"EventType": event_type, "EventId": event_id, "EventTimestamp": now}
    if op is not None:
        doc["Id"] = op.Id
        for key in ("Name", "ParentId", "SubType"):
            value = getattr(op, key)
            if value is not None:
                doc[key] = value
    doc[f"{event_type}Details"] = details
    return encode(doc)


def encode(doc: dict[str, Any]) -> str:
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
