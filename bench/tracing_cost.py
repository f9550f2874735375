"""T1: what tracing costs per step: off (``instrument()`` called, no SDK provider set up), and on
(an SDK provider building every span, with an exporter that drops them: the cost of the spans,
not of shipping them), against the same steps untraced, in one repetition.

Imported only when the ``otel`` extra is installed (``run.py`` skips the T1 row otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from durably.integrations.otel import instrument, uninstrument
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from workloads import w1


class Dropping(SpanExporter):
    """Takes every span and keeps none."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _steps(workdir: Path, sync: str, n: int) -> float:
    workdir.mkdir()
    return w1(workdir / "w1.db", sync, n)


def t1(workdir: Path, sync: str, n: int) -> dict[str, Any]:
    """Seconds for ``n`` sequential steps untraced, with tracing off, and with tracing on."""
    plain = _steps(workdir / "plain", sync, n)
    instrument()  # the global provider is the API's no-op one: off
    try:
        off = _steps(workdir / "off", sync, n)
    finally:
        uninstrument()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Dropping()))
    instrument(provider)
    try:
        on = _steps(workdir / "on", sync, n)
    finally:
        uninstrument()
        provider.shutdown()
    return {"plain": plain, "off": off, "on": on}
