"""Prometheus metrics, labelled by model (and route for HTTP), in one registry per app.

``cnnserve_requests_total``, ``cnnserve_request_duration_seconds`` and
``cnnserve_request_errors_total`` come from :class:`service.http.middleware.RequestMiddleware`; the batch size,
inference time, queue depth and queue rejections from each model's batcher through
:class:`ModelMetrics`, whose label children are bound once so the hot path does no lookups
(``cnnserve_non_finite_outputs_total``, from the data plane, per variant too);
``cnnserve_event_loop_lag_seconds`` from :func:`service.observability.loop_lag.watch_loop_lag`;
``cnnserve_model_ready``, ``cnnserve_model_version_served`` and ``_latest`` and
``cnnserve_model_load_failures_total`` from the model manager; ``cnnserve_worker_replacements_total``
from a worker that replaces one that exited. The alerts of ``deploy/prometheus/`` read these.

In a group of workers (:mod:`service.process.supervisor`) every worker writes its values to files in
the group's ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode) and ``/metrics``,
whichever worker answers it, adds them all up: counters and histograms over every worker that
ever ran, the queue depth over the live ones, ``cnnserve_model_ready`` and the version served are
the lowest of the live workers' (1: every worker serves the model), the latest version the highest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["MODEL_STATE_KEY", "UNMATCHED", "Metrics", "ModelMetrics", "route_template"]

# Routes store the resolved model's name here (request.state.model); unknown names never become labels.
MODEL_STATE_KEY = "model"
UNMATCHED = "unmatched"  # the route label of a request answered before routing (an unknown path, a 413)


def route_template(scope: dict[str, Any]) -> str:
    """The label of a request's route: the template it matched (never the raw path), or ``UNMATCHED``."""
    return getattr(scope.get("route"), "path", None) or UNMATCHED


_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_BYTES_BUCKETS = tuple(float(2**k) for k in range(10, 26, 2))  # 1 KiB to 32 MiB
_LAG_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5)


class ModelMetrics:
    """The per-model series a batcher updates, bound to one model label."""

    def __init__(self, metrics: Metrics, model: str) -> None:
        self.model = model
        self.batch_size = metrics.batch_size.labels(model)
        self.inference_seconds = metrics.inference_seconds.labels(model)
        self.queue_depth = metrics.queue_depth.labels(model)
        self.queue_rejections = metrics.queue_rejections.labels(model)
        self._non_finite = metrics.non_finite_outputs

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference_seconds.observe(seconds)

    def count_non_finite(self, variant: str, inputs: int) -> None:
        """``inputs`` whose outputs were not finite (a failure path: the label lookup is no cost)."""
        self._non_finite.labels(self.model, variant).inc(inputs)


class Metrics:
    """The service's series; ``multiprocess_dir``: a worker of a group, whose ``/metrics`` shows the whole group's."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self._multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        self._add_http_series(self.registry)
        self._add_model_series(self.registry)
        self._add_view_series(self.registry)
        self._models: dict[str, ModelMetrics] = {}
        self._request_children: dict[tuple[str, str, int, str], tuple[Any, Any, Any]] = {}

    def _add_http_series(self, r: CollectorRegistry) -> None:
        # protocol: "http" (REST and the v2 protocol; the route tells which), and a second front end's own.
        self.requests = Counter(
            "cnnserve_requests", "requests answered", ["model", "protocol", "route", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "cnnserve_request_duration_seconds",
            "request latency",
            ["model", "protocol", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "cnnserve_request_errors",
            "requests answered 4xx/5xx",
            ["model", "protocol", "route", "status"],
            registry=r,
        )
        self.client_disconnects = Counter(
            "cnnserve_client_disconnects",
            "requests whose client went away before the body arrived (logged at INFO, answered with nothing)",
            ["route"],
            registry=r,
        )
        self.loop_lag = Histogram(
            "cnnserve_event_loop_lag_seconds",
            "how late the event loop ran a timer (the wait for a turn on it)",
            buckets=_LAG_BUCKETS,
            registry=r,
        )

    def _add_model_series(self, r: CollectorRegistry) -> None:
        self.batch_size = Histogram(
            "cnnserve_batch_size",
            "inputs per session.run (dynamic batching)",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "cnnserve_inference_duration_seconds",
            "session.run time per batch",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "cnnserve_queue_depth",
            "requests waiting in the batch queue",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.queue_rejections = Counter(
            "cnnserve_queue_rejections", "requests refused with 503 because the queue was full", ["model"], registry=r
        )
        self.non_finite_outputs = Counter(
            "cnnserve_non_finite_outputs",
            "inputs whose outputs the model computed as NaN or ±Inf (their request answered 500 non_finite_output)",
            ["model", "variant"],
            registry=r,
        )
        self.model_ready = Gauge(
            "cnnserve_model_ready",
            "1 when the model serves, 0 otherwise",
            ["model"],
            registry=r,
            multiprocess_mode="livemin",
        )
        self.model_version_served = Gauge(
            "cnnserve_model_version_served",
            "the newest version served (0: none); in a group, the oldest any live worker serves",
            ["model"],
            registry=r,
            multiprocess_mode="livemin",
        )
        self.model_version_latest = Gauge(
            "cnnserve_model_version_latest",
            "the newest version the model's card lists (0: no readable card)",
            ["model"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.model_load_failures = Counter(
            "cnnserve_model_load_failures",
            "load attempts that failed: a version (bad hash, unreadable file, a graph ONNX Runtime refuses) "
            "or the whole card",
            ["model"],
            registry=r,
        )
        self.worker_replacements = Counter(
            "cnnserve_worker_replacements",
            "workers started in place of one that exited (python -m service with several workers)",
            registry=r,
        )

    def _add_view_series(self, r: CollectorRegistry) -> None:
        """The views (service/visualize); their requests are counted by route like every other."""
        self.view_seconds = Histogram(
            "cnnserve_view_duration_seconds",
            "time to compute a view's answer",
            ["model", "view"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.view_bytes = Histogram(
            "cnnserve_view_bytes", "bytes of a view's answer", ["model", "view"], buckets=_BYTES_BUCKETS, registry=r
        )
        self.view_sessions = Counter(
            "cnnserve_view_sessions_opened",
            "ONNX Runtime sessions opened for the activation view",
            ["model"],
            registry=r,
        )

    def model(self, name: str) -> ModelMetrics:
        if name not in self._models:
            self._models[name] = ModelMetrics(self, name)
        return self._models[name]

    def observe_model(self, model: str, ready: bool, served: int, latest: int) -> None:
        """A model (re)loaded or dropped: its readiness, the newest version served and the newest its card lists."""
        self.model_ready.labels(model).set(1 if ready else 0)
        self.model_version_served.labels(model).set(served)
        self.model_version_latest.labels(model).set(latest)

    def observe_request(self, model: str, route: str, status: int, seconds: float, protocol: str = "http") -> None:
        key = (model, route, status, protocol)
        children = self._request_children.get(key)
        if children is None:
            errors = self.errors.labels(model, protocol, route, str(status)) if status >= 400 else None
            children = (
                self.requests.labels(model, protocol, route, str(status)),
                self.request_seconds.labels(model, protocol, route),
                errors,
            )
            self._request_children[key] = children
        count, latency, errors = children
        count.inc()
        latency.observe(seconds)
        if errors is not None:
            errors.inc()

    def render(self) -> tuple[bytes, str]:
        if self._multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        group = CollectorRegistry()
        MultiProcessCollector(group, path=str(self._multiprocess_dir))
        return generate_latest(group), CONTENT_TYPE_LATEST
