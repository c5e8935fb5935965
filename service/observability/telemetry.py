"""FastAPI's built-in OpenTelemetry: decided once, when the app is created.

FastAPI asks, on every request, whether a tracer, meter or logger provider is configured, and that
question (the providers and the environment, read each time) cost about a tenth of a LeNet-5
request in a profile of the inference routes. The answer is known when the app is created: tracing
stays on where OpenTelemetry is configured by then (a tracer provider set, as the SDK or
``opentelemetry-instrument`` set one, or ``FASTAPI_OTEL_AUTO_CONFIGURE=true``, FastAPI's own
switch to set one up from the ``OTEL_*`` variables); otherwise it is off, and the question costs a
dictionary lookup. FastAPI's HTTP metrics and logs stay off: ``/metrics`` and the service's own
logs have both.
"""

from __future__ import annotations

import os

from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace

__all__ = ["fastapi_telemetry", "tracing_configured"]


def tracing_configured() -> bool:
    """Whether OpenTelemetry tracing is set up for this process (now, or by FastAPI from the environment)."""
    auto = os.environ.get("FASTAPI_OTEL_AUTO_CONFIGURE", "").lower() == "true"
    return auto or not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def fastapi_telemetry() -> TelemetryConfig:
    """``FastAPI(telemetry=...)``: request spans only where tracing is configured, never FastAPI's metrics or logs."""
    return {"tracing": tracing_configured(), "metrics": False, "logs": False}
