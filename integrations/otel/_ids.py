"""Trace and span ids derived from the durable record, so every invocation, in any process, names
the same execution and operation with the same ids (and a replay cannot mint new ones)."""

from __future__ import annotations

import hashlib
import threading

from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(("durably", *parts)).encode()).digest()


def trace_id_of(execution_arn: str) -> int:
    """The 128-bit trace id of an execution (never 0, which OpenTelemetry reserves)."""
    return int.from_bytes(_digest("trace", execution_arn)[:16], "big") or 1


def span_id_of(execution_arn: str, key: str) -> int:
    """The 64-bit span id of ``key`` in an execution: an operation id, ``execution``, or an attempt."""
    return int.from_bytes(_digest("span", execution_arn, key)[:8], "big") or 1


def attempt_key(operation_id: str, attempt: int) -> str:
    return f"{operation_id}/attempt/{attempt}"


EXECUTION_KEY = "execution"
"""The key of an execution's own span (no operation id can be it: ids are hex digests)."""


class PinnedIds(IdGenerator):
    """Hands out the ids set for the next span on this thread; random ones when none are set."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()
        self._next = threading.local()

    def pin(self, trace_id: int | None, span_id: int | None) -> None:
        self._next.trace_id, self._next.span_id = trace_id, span_id

    def generate_trace_id(self) -> int:
        pinned: int | None = getattr(self._next, "trace_id", None)
        return pinned if pinned is not None else self._random.generate_trace_id()

    def generate_span_id(self) -> int:
        pinned: int | None = getattr(self._next, "span_id", None)
        return pinned if pinned is not None else self._random.generate_span_id()


def parse_trace_header(header: str | None) -> tuple[int, int, bool] | None:
    """(trace id, parent span id, sampled) from a W3C ``traceparent`` or an X-Ray trace header
    (``Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=0|1``, as chained invokes pass it)."""
    if not header:
        return None
    parts = header.strip().split("-")
    if len(parts) == 4 and parts[0] == "00" and len(parts[1]) == 32 and len(parts[2]) == 16:
        try:
            return int(parts[1], 16), int(parts[2], 16), bool(int(parts[3], 16) & 1)
        except ValueError:
            return None
    fields = dict(p.split("=", 1) for p in header.split(";") if "=" in p)
    root, parent = fields.get("Root", "").split("-"), fields.get("Parent", "")
    if len(root) != 3 or root[0] != "1" or len(root[1]) != 8 or len(root[2]) != 24 or len(parent) != 16:
        return None
    try:
        return int(root[1] + root[2], 16), int(parent, 16), fields.get("Sampled", "1") != "0"
    except ValueError:
        return None


def xray_header(trace_id: int, parent_span_id: int, sampled: bool = True) -> str:
    """An X-Ray trace header for a chained invoke (the field the service defines is ``XAmznTraceId``)."""
    digits = f"{trace_id:032x}"
    return f"Root=1-{digits[:8]}-{digits[8:]};Parent={parent_span_id:016x};Sampled={int(sampled)}"
