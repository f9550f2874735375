"""OpenTelemetry tracing of durable executions (``pip install 'durably[otel]'``).

One trace per execution, continued across suspensions, processes and workers: spans are built from
the durable record (ids derived from the execution ARN and operation ids, times from the recorded
timestamps), each emitted once, when its operation ends, so replay never duplicates one. Agent runs
carry the GenAI semantic conventions (``invoke_agent``, ``chat``, ``execute_tool``); saga
compensations are marked and linked to the step they undo.

.. code-block:: python

    from durably.integrations.otel import instrument

    instrument()  # every durable handler in this process, to the global TracerProvider

or per handler: ``@durable_execution(plugins=[DurableTracing(provider)])``. ``durably run`` and
``durably worker`` switch it on from the standard variables (``OTEL_TRACES_EXPORTER``,
``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME``, ...).
"""

from __future__ import annotations

from typing import Any

from durably.core import register_global_plugin, unregister_global_plugin
from durably.integrations.otel._env import meter_provider_from_env, provider_from_env, wanted
from durably.integrations.otel._ids import span_id_of, trace_id_of
from durably.integrations.otel._plugin import CONTENT_ENV, DurableTracing

_installed: list[DurableTracing] = []


def instrument(tracer_provider: Any = None, **options: Any) -> DurableTracing:
    """Trace every durable handler in this process (see :class:`DurableTracing` for ``options``);
    calling it again replaces the previous instrumentation."""
    uninstrument()
    tracing = DurableTracing(tracer_provider, **options)
    register_global_plugin(tracing)
    _installed.append(tracing)
    return tracing


def uninstrument() -> None:
    """Stop what :func:`instrument` started."""
    while _installed:
        unregister_global_plugin(_installed.pop())


def instrument_from_env() -> DurableTracing | None:
    """:func:`instrument` with providers of its own built from the OpenTelemetry environment
    variables, when they ask for traces (the CLI calls it); None when they do not. Metrics too when
    ``OTEL_METRICS_EXPORTER`` names an exporter. The caller shuts the providers down
    (``DurableTracing.provider`` and ``.meter_provider``) to send what is still batched."""
    if not wanted():
        return None
    return instrument(provider_from_env(), meter_provider=meter_provider_from_env())


def trace_id_hex(execution_arn: str) -> str:
    """The trace id of an execution as backends print it (32 hex digits)."""
    return f"{trace_id_of(execution_arn):032x}"


__all__ = [
    "CONTENT_ENV",
    "DurableTracing",
    "instrument",
    "instrument_from_env",
    "span_id_of",
    "trace_id_hex",
    "trace_id_of",
    "uninstrument",
]
