"""Tracing with OpenTelemetry: on where the standard ``OTEL_*`` variables ask for it, and free where they do not.

:func:`tracer_provider_from_environment` decides once per process, when the app is created:

* a tracer provider already set for the process (the OpenTelemetry SDK set up by its owner,
  ``opentelemetry-instrument``) is used as it is;
* otherwise ``OTEL_TRACES_EXPORTER=otlp``, or an ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` without it, makes one here: the SDK exporting over
  OTLP/HTTP in batches, configured by the exporter's own ``OTEL_*`` variables, its resource by
  ``OTEL_SERVICE_NAME`` (default ``cnnserve``) and ``OTEL_RESOURCE_ATTRIBUTES``;
* otherwise (and with ``OTEL_SDK_DISABLED=true``) there is none: no span is made, and FastAPI's
  per-request question whether a provider is configured, which cost about a tenth of a LeNet-5
  request in a profile, is answered once (:func:`fastapi_telemetry`).

FastAPI's built-in OpenTelemetry makes each request's server span, continuing a W3C
``traceparent``; the service adds its own spans under it (``decode``, ``queue wait``,
``inference``, ``encode``) and one ``batch inference`` span per batch, which each request it
served links to. FastAPI's own metrics and logs stay off: ``/metrics`` and the service's logs
have both.
"""

from __future__ import annotations

import os

from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace

__all__ = ["TRACER_NAME", "fastapi_telemetry", "tracer_provider_from_environment"]

TRACER_NAME = "cnnserve"
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def _traces_asked() -> bool:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter == "otlp"
    return any(os.environ.get(name) for name in _ENDPOINTS)


def tracer_provider_from_environment() -> trace.TracerProvider | None:
    """This process's tracer provider when tracing is on (set up here from ``OTEL_*`` if asked), else None."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    current = trace.get_tracer_provider()
    if not isinstance(current, trace.ProxyTracerProvider):
        return current
    if not _traces_asked():
        return None
    # Imported here: the SDK and the exporter cost nothing to a service that does not trace.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    service = os.environ.get("OTEL_SERVICE_NAME") or "cnnserve"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def fastapi_telemetry(provider: trace.TracerProvider | None) -> TelemetryConfig:
    """``FastAPI(telemetry=...)``: request spans from ``provider`` if any; never FastAPI's metrics or logs."""
    return {"tracing": provider is not None, "tracer_provider": provider, "metrics": False, "logs": False}
