"""The tracing plugin: spans built from the durable record, once per operation, in one trace per
execution whichever process or invocation reports them.

What reports what: an operation's span is emitted by the invocation that records its end (or, for
an operation the engine finished while the execution was suspended, by the next invocation, from
its start info). The execution's span is emitted by the invocation that ends it. Each invocation
is a span of its own. A retried step has a span per attempt. Replay emits nothing: the engine's
record of a replayed operation reaches no hook. After a crashed invocation the engine hands its
finished operations to the next invocation, which reports them (a span the crashed process had
exported already is then sent again, with the same ids); the killed invocation's own span is lost
(the history records that invocation as ``Runtime.ExitError``). An execution the engine ends by
itself (timed out, stopped) runs no invocation to report its span.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from typing import Any

from durably.core import (
    DurableInstrumentationPlugin,
    ErrorObject,
    InvocationEndInfo,
    InvocationStartInfo,
    Operation,
    PropagationInput,
    PropagationMetadata,
    RecordedOperation,
    UserFunctionEndInfo,
    UserFunctionStartInfo,
    register_log_fields,
)
from durably.integrations.otel._ids import (
    EXECUTION_KEY,
    PinnedIds,
    attempt_key,
    parse_trace_header,
    span_id_of,
    trace_id_of,
    xray_header,
)
from durably.integrations.otel._metrics import Instruments
from durably.integrations.otel._record import TERMINAL, Record, error_of
from durably.integrations.otel._shapes import Options, Shape, hinted, shape_of
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics._internal import _ProxyMeterProvider
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

INSTRUMENTATION_NAME = "durably"
OFF_PROVIDERS = (trace.NoOpTracerProvider, trace.ProxyTracerProvider)
"""The global tracer provider's types before an SDK provider is set: tracing is off."""
OFF_METER_PROVIDERS = (metrics.NoOpMeterProvider, _ProxyMeterProvider)
"""The same for metrics (the API keeps its proxy type private)."""
CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
CONTENT_ON = frozenset({"true", "1", "span_only", "span_and_event"})
"""Values of ``CONTENT_ENV`` that put content on spans (the GenAI instrumentations' values)."""


CALLER = "\x00caller"
"""The parent key of the execution's span: the caller's span, if the execution was started with one."""
traces: dict[str, int] = {}
"""The trace id of each execution an invocation of this process is running (for log records)."""


def log_fields(fields: dict[str, Any]) -> dict[str, str]:
    """``trace_id`` and ``span_id`` for a log record of a traced execution (the operation it is
    logged in, or the execution's span); nothing for an execution that is not traced here."""
    arn = fields.get("executionArn")
    trace_id = traces.get(arn) if isinstance(arn, str) else None
    if trace_id is None or not isinstance(arn, str):
        return {}
    key = fields.get("operationId") or fields.get("parentId") or EXECUTION_KEY
    return {"trace_id": f"{trace_id:032x}", "span_id": f"{span_id_of(arn, str(key)):016x}"}


def _function_of(arn: str) -> str:
    """The function name in an execution ARN (``...:function:NAME:QUALIFIER/durable-execution/...``)."""
    return arn.split(":function:", 1)[1].split(":", 1)[0].split("/", 1)[0] if ":function:" in arn else "execution"


def _ns(ms: int | None) -> int:
    return (ms if ms is not None else int(time.time() * 1000)) * 1_000_000


def capture_content_from_env() -> bool:
    return os.environ.get(CONTENT_ENV, "").strip().lower() in CONTENT_ON


@functools.cache
def _langchain_instrumentor() -> Any:
    """The class of opentelemetry-instrumentation-langchain, if installed (looked up once: an import
    that fails searches the file system again every time)."""
    try:
        from opentelemetry.instrumentation.langchain import LangchainInstrumentor  # type: ignore[import-not-found]
    except ImportError:
        return None
    return LangchainInstrumentor


def langchain_traces_model_calls() -> bool:
    """Whether LangChain's own OpenTelemetry instrumentation is on (it then reports model calls)."""
    if os.environ.get("LANGSMITH_OTEL_ENABLED", "").lower() == "true":
        return True
    instrumentor = _langchain_instrumentor()
    return instrumentor is not None and bool(getattr(instrumentor(), "is_instrumented_by_opentelemetry", False))


class DurableTracing:
    """OpenTelemetry tracing of durable executions: ``@durable_execution(plugins=[DurableTracing()])``,
    or :func:`durably.integrations.otel.instrument` for every handler in the process.

    ``tracer_provider``: the SDK ``TracerProvider`` to report to (default: the global one);
    ``meter_provider``: the ``MeterProvider`` of the metrics (default: the global one).
    ``capture_content``: put model output, tool arguments and tool results on GenAI spans (default:
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``). ``genai``: GenAI names and attributes
    on agent spans (default: on, unless LangChain's own instrumentation already reports the model
    calls). ``flush``: flush the provider at the end of each invocation (default: on AWS Lambda,
    which freezes the process between invocations).
    """

    def __init__(self, tracer_provider: Any = None, *, meter_provider: Any = None, capture_content: bool | None = None,
                 genai: bool | None = None, flush: bool | None = None) -> None:
        self.provider = tracer_provider
        """The provider given (None: the global one, looked up at each invocation)."""
        self.meter_provider = meter_provider
        self._instruments: dict[int, Instruments] = {}
        self._capture_content = capture_content
        self._genai = genai
        self._flush = flush
        self._ids = PinnedIds()
        self._lock = threading.Lock()
        self._tracers: dict[int, Any] = {}

    def _tracer(self) -> tuple[Any, Any]:
        provider = self.provider or trace.get_tracer_provider()
        with self._lock:
            tracer = self._tracers.get(id(provider))
            if tracer is None:
                tracer = provider.get_tracer(INSTRUMENTATION_NAME)
                if hasattr(tracer, "id_generator"):  # the SDK's tracer: our ids for our spans only
                    tracer.id_generator = self._ids
                self._tracers[id(provider)] = tracer
        return provider, tracer

    def create_plugin(self, info: InvocationStartInfo) -> InvocationTracer | None:
        """The tracer of one invocation; None (no plugin, no cost) while no SDK provider is set up."""
        if (self.provider is None and isinstance(trace.get_tracer_provider(), OFF_PROVIDERS)
                and self.meter_provider is None and isinstance(metrics.get_meter_provider(), OFF_METER_PROVIDERS)):
            return None
        provider, tracer = self._tracer()
        options = Options(genai=not langchain_traces_model_calls() if self._genai is None else self._genai,
                          capture_content=capture_content_from_env() if self._capture_content is None
                          else self._capture_content)
        flush = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) if self._flush is None else self._flush
        register_log_fields(log_fields)
        return InvocationTracer(tracer, self._ids, provider if flush else None, options, self._meter())

    def _meter(self) -> Instruments:
        provider = self.meter_provider or metrics.get_meter_provider()
        with self._lock:
            instruments = self._instruments.get(id(provider))
            if instruments is None:
                instruments = self._instruments[id(provider)] = Instruments(provider.get_meter(INSTRUMENTATION_NAME))
        return instruments


class InvocationTracer(DurableInstrumentationPlugin):
    """The spans of one invocation."""

    def __init__(self, tracer: Any, ids: PinnedIds, flush: Any, options: Options, instruments: Instruments) -> None:
        self.tracer = tracer
        self.instruments = instruments
        self.function = ""
        self.ids = ids
        self.flush = flush
        self.options = options
        self.arn = ""
        self.trace_id = 0
        self.caller: int | None = None
        """The span the execution's span is a child of (a caller's traceparent, an invoking operation)."""
        self.record = Record()
        self.reported: set[str] = set()
        self.lock = threading.Lock()
        self.invocation: Any = None
        self.attempts: dict[tuple[str, int], int] = {}

    # -- the hooks
    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        self.arn = info.execution_arn or ""
        caller = parse_trace_header(info.trace_header)
        self.trace_id, self.caller = (caller[0], caller[1]) if caller else (trace_id_of(self.arn), None)
        traces[self.arn] = self.trace_id
        self.function = _function_of(self.arn)
        if info.is_first_invocation:
            self.instruments.started.add(1, {"durable.function.name": self.function})
        self.record = Record(info.records)
        attributes = {"durable.execution.arn": self.arn, "durable.invocation.first": info.is_first_invocation}
        self.ids.pin(None, None)
        self.invocation = self.tracer.start_span("invocation", context=self._parent(EXECUTION_KEY),
                                                 attributes=hinted(attributes, "chain"))
        for op in info.records:
            if op.Id in info.updated_operations and op.Status in TERMINAL and op.Type != "EXECUTION":
                self._report(op)

    def on_operation_recorded(self, info: RecordedOperation) -> None:
        op = info.operation
        with self.lock:
            self.record.add(op)
        if info.action == "START" and op.Type == "CALLBACK":
            self.instruments.operation_started(self.function, op)
        elif info.action == "RETRY":
            self.instruments.retried(self.function, op)
        if op.Status in TERMINAL and op.Type != "EXECUTION":
            self._report(op)

    def on_user_function_start(self, info: UserFunctionStartInfo) -> None:
        with self.lock:
            self.attempts[(info.operation_id, info.attempt or 1)] = time.time_ns()

    def on_user_function_end(self, info: UserFunctionEndInfo) -> None:
        attempt = info.attempt or 1
        with self.lock:
            started = self.attempts.pop((info.operation_id, attempt), None)
        if started is None or (info.outcome == "SUCCEEDED" and attempt <= 1):
            return  # a first attempt that succeeded is its operation's span already
        outcome = "succeeded" if info.outcome == "SUCCEEDED" else "failed"
        attributes: dict[str, Any] = {"durable.execution.arn": self.arn, "durable.operation.id": info.operation_id,
                                      "durable.attempt.number": attempt, "durable.attempt.outcome": outcome}
        if info.name:
            attributes["durable.operation.name"] = info.name
        self._emit(Shape(f"{info.name or info.operation_type.value.lower()} attempt {attempt}",
                         hinted(attributes, "chain")), attempt_key(info.operation_id, attempt),
                   info.operation_id, started, time.time_ns(), info.error)

    def provide_propagation_metadata(self, info: PropagationInput) -> PropagationMetadata:
        """An invoked execution's trace continues this one, under the invoking operation's span."""
        return PropagationMetadata(xray_header(self.trace_id, span_id_of(self.arn, info.operation_id)))

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        if info.status in ("SUCCEEDED", "FAILED"):
            self._report_execution(info)
        if self.invocation is not None:
            self.invocation.set_attribute("durable.invocation.status", info.status.value)
            if info.status == "FAILED":
                self.invocation.set_status(Status(StatusCode.ERROR))
            self.invocation.end()
        if self.flush is not None and hasattr(self.flush, "force_flush"):
            self.flush.force_flush()
        traces.pop(self.arn, None)

    # -- building spans
    def _report(self, op: Operation) -> None:
        with self.lock:
            if op.Id in self.reported:
                return
            self.reported.add(op.Id)
            shape = shape_of(self.arn, op, self.record, self.options)
        chat = shape.attributes.get("gen_ai.operation.name") == "chat"
        self.instruments.operation_ended(self.function, op, shape.attributes["gen_ai.provider.name"] if chat else None)
        self._emit(shape, op.Id, op.ParentId or EXECUTION_KEY, _ns(op.StartTimestamp), _ns(op.EndTimestamp),
                   error_of(op) if op.Status != "SUCCEEDED" else None)

    def _report_execution(self, info: InvocationEndInfo) -> None:
        execution_id = self.arn.rsplit("/", 1)[-1]
        op = self.record.ops.get(execution_id)
        status = info.status.value
        attributes = {"durable.execution.arn": self.arn, "durable.execution.status": status}
        self.instruments.ended.add(1, {"durable.function.name": self.function, "durable.execution.status": status})
        error = info.error if isinstance(info.error, ErrorObject) else None
        shape = Shape(f"execution {self.function}", hinted(attributes, "chain"), SpanKind.SERVER)
        self._emit(shape, EXECUTION_KEY, CALLER, _ns(op.StartTimestamp if op is not None else None), time.time_ns(),
                   error)

    def _parent(self, key: str | None) -> Any:
        span_id = self.caller if key == CALLER else span_id_of(self.arn, key) if key is not None else None
        if span_id is None:
            return otel_context.Context()
        parent = SpanContext(self.trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
        return trace.set_span_in_context(NonRecordingSpan(parent), otel_context.Context())

    def _emit(self, shape: Shape, key: str, parent_key: str | None, start_ns: int, end_ns: int,
              error: ErrorObject | None) -> None:
        links = [Link(SpanContext(self.trace_id, span_id_of(self.arn, other), is_remote=True,
                                  trace_flags=TraceFlags(TraceFlags.SAMPLED)), {"durably.link": "undoes"})
                 for other in shape.link_to]
        self.ids.pin(self.trace_id, span_id_of(self.arn, key))
        try:
            span = self.tracer.start_span(shape.name, context=self._parent(parent_key), kind=shape.kind,
                                          attributes=shape.attributes, links=links, start_time=start_ns)
        finally:
            self.ids.pin(None, None)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, f"{error.ErrorType}: {error.ErrorMessage}"))
            event = {"exception.type": error.ErrorType or "Error", "exception.message": error.ErrorMessage or ""}
            if error.StackTrace:
                event["exception.stacktrace"] = "\n".join(error.StackTrace)
            span.add_event("exception", event, timestamp=end_ns)
        span.end(end_time=max(end_ns, start_ns))
