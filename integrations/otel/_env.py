"""Tracing switched on by the standard OpenTelemetry environment variables, for the CLI."""

from __future__ import annotations

import os
import sys

TRACES_EXPORTER = "OTEL_TRACES_EXPORTER"
METRICS_EXPORTER = "OTEL_METRICS_EXPORTER"
ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
EXPORTERS = ("otlp", "otlp_proto_http", "console")


def wanted() -> bool:
    """Whether the environment asks for traces: an exporter other than ``none``, or an OTLP endpoint."""
    exporters = os.environ.get(TRACES_EXPORTER, "").strip()
    if exporters:
        return exporters.lower() != "none"
    return any(os.environ.get(name) for name in ENDPOINTS)


def provider_from_env() -> object:
    """An SDK ``TracerProvider`` as ``opentelemetry-instrument`` would build it from the environment:
    resource from ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``, exporters from
    ``OTEL_TRACES_EXPORTER`` (otlp over HTTP, or console), endpoints and headers from the OTLP
    variables (read by the exporter itself), spans sent in batches."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider(resource=Resource.create())
    names = [n.strip().lower() for n in os.environ.get(TRACES_EXPORTER, "otlp").split(",") if n.strip()]
    for name in names:
        if name not in EXPORTERS:
            raise ValueError(f"{TRACES_EXPORTER}={name!r} is not an exporter durably can start; "
                             f"use one of: {', '.join(EXPORTERS)} (or none)")
        if name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))  # stdout: the output
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def meter_provider_from_env() -> object | None:
    """A ``MeterProvider`` exporting every ``OTEL_METRIC_EXPORT_INTERVAL`` (the reader reads it) to
    ``OTEL_METRICS_EXPORTER`` (otlp over HTTP, or console); None unless that variable names one."""
    names = [n.strip().lower() for n in os.environ.get(METRICS_EXPORTER, "").split(",") if n.strip()]
    names = [n for n in names if n != "none"]
    if not names:
        return None
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricExporter, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    readers = []
    for name in names:
        if name not in EXPORTERS:
            raise ValueError(f"{METRICS_EXPORTER}={name!r} is not an exporter durably can start; "
                             f"use one of: {', '.join(EXPORTERS)} (or none)")
        exporter: MetricExporter
        if name == "console":
            exporter = ConsoleMetricExporter(out=sys.stderr)
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            exporter = OTLPMetricExporter()
        readers.append(PeriodicExportingMetricReader(exporter))
    return MeterProvider(resource=Resource.create(), metric_readers=readers)
