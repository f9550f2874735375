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
