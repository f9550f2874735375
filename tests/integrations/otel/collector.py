"""A small OTLP/HTTP trace receiver on 127.0.0.1: what real processes export reaches the test."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.trace import SpanKind, StatusCode

from .spans import Span


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    return getattr(value, kind) if kind else None


class Collector:
    """Receives ``POST /v1/traces`` (protobuf) and keeps the spans and their resources."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.resources: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = ExportTraceServiceRequest.FromString(body)
                collector._add(request)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()
                self.wfile.write(b"")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _add(self, request: ExportTraceServiceRequest) -> None:
        with self._lock:
            for resource_spans in request.resource_spans:
                self.resources.append({a.key: _value(a.value) for a in resource_spans.resource.attributes})
                for scope in resource_spans.scope_spans:
                    for s in scope.spans:
                        self.spans.append(Span(
                            s.name, int.from_bytes(s.trace_id, "big"), int.from_bytes(s.span_id, "big"),
                            int.from_bytes(s.parent_span_id, "big") if s.parent_span_id else None,
                            s.start_time_unix_nano, s.end_time_unix_nano,
                            {a.key: _value(a.value) for a in s.attributes}, SpanKind(max(s.kind - 1, 0)),
                            StatusCode(s.status.code), s.status.message or None,
                            [(e.name, {a.key: _value(a.value) for a in e.attributes}) for e in s.events],
                            [(int.from_bytes(link.span_id, "big"), {a.key: _value(a.value) for a in link.attributes})
                             for link in s.links]))

    def wait_for(self, condition: Callable[[list[Span]], bool], what: str, timeout: float = 30) -> list[Span]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = list(self.spans)
            if condition(found):
                return found
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {sorted(s.name for s in found)}"
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
