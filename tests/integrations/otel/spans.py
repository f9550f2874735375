"""The in-memory exporter the tracing tests report to, and a typed view of what it holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: int
    span_id: int
    parent_id: int | None
    start: int
    end: int
    attrs: dict[str, Any]
    kind: SpanKind
    status: StatusCode
    description: str | None
    events: list[tuple[str, dict[str, Any]]]
    links: list[tuple[int, dict[str, Any]]]

    @classmethod
    def of(cls, span: ReadableSpan) -> Span:
        assert span.context is not None and span.start_time is not None and span.end_time is not None
        return cls(span.name, span.context.trace_id, span.context.span_id,
                   span.parent.span_id if span.parent is not None else None, span.start_time, span.end_time,
                   dict(span.attributes or {}), span.kind, span.status.status_code, span.status.description,
                   [(e.name, dict(e.attributes or {})) for e in span.events],
                   [(link.context.span_id, dict(link.attributes or {})) for link in span.links])


class Spans:
    """A provider and what it exported."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    @property
    def all(self) -> list[Span]:
        return [Span.of(s) for s in self.exporter.get_finished_spans()]

    def named(self, name: str) -> list[Span]:
        return [s for s in self.all if s.name == name]

    def one(self, name: str) -> Span:
        found = self.named(name)
        assert len(found) == 1, (name, sorted(s.name for s in self.all))
        return found[0]

    def children(self, parent: Span) -> list[Span]:
        return [s for s in self.all if s.parent_id == parent.span_id]
