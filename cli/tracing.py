"""Tracing for ``durably run`` and ``durably worker``, switched on by the standard OpenTelemetry
environment variables (``OTEL_TRACES_EXPORTER``, ``OTEL_EXPORTER_OTLP_ENDPOINT``, ...) when the
``otel`` extra is installed, as ``opentelemetry-instrument`` users expect."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager

from durably.cli.errors import BadInput
from durably.cli.logs import CLI_LOGGER

ASKING = ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


@contextmanager
def traced_from_env() -> Iterator[None]:
    """Trace every execution this command runs, if the environment asks; flush the spans at the end."""
    import os

    if not any(os.environ.get(name) for name in ASKING):
        yield
        return
    if importlib.util.find_spec("opentelemetry.sdk") is None:
        CLI_LOGGER.warning("%s is set, but tracing needs the otel extra: pip install 'durably[otel]'; "
                           "running without traces", next(n for n in ASKING if os.environ.get(n)))
        yield
        return
    from durably.integrations.otel import instrument_from_env, uninstrument

    try:
        tracing = instrument_from_env()
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    try:
        yield
    finally:
        uninstrument()
        for provider in (tracing.provider, tracing.meter_provider) if tracing is not None else ():
            shutdown = getattr(provider, "shutdown", None)
            if callable(shutdown):
                shutdown()  # sends what is still batched
