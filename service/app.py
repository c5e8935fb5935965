"""``create_app(settings)``: settings, lifespan, middleware, error handlers, routers and the OpenAPI; nothing else.

Sessions are opened in the lifespan (in the background: the server is live at once and ready
when a first model is), never at import time. A worker of a group (``group``, from
:mod:`service.process.supervisor`) shares its metrics and readiness with the others; one that replaces a
worker that died loads its models before it takes connections, so the group keeps answering.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress

from fastapi import Depends, FastAPI
from opentelemetry.trace import TracerProvider

from . import __version__
from .core.catalog import ArchitectureCatalog
from .core.dataplane import DataPlane
from .core.model_manager import ModelManager, ModelState
from .core.readiness import GroupReadiness, LocalReadiness, StatusFile, WorkerGroup
from .grpc.server import GrpcServer
from .http.application import ServiceApp
from .http.deps import require_api_key
from .http.errors import install_error_handlers
from .http.inference import install_inference_routes
from .http.middleware import RequestMiddleware
from .http.openapi import install_openapi
from .http.routes import health, metrics, models, page, predict, v2, visualize, zoo
from .observability.loop_lag import watch_loop_lag
from .observability.metrics import Metrics
from .observability.telemetry import TRACER_NAME, fastapi_telemetry, tracer_provider_from_environment
from .process import gc_tuning
from .settings import Settings
from .visualize import Views

__all__ = ["create_app"]

DESCRIPTION = """\
Serves the image classifiers of a cnnserve model repository with ONNX Runtime.

* `POST /predict`: images (multipart, raw body or base64 JSON) or a tensor; top-k classes.
* `/v2/...`: the Open Inference Protocol (KServe v2 / Triton), binary tensor extension included; the
  same protocol over gRPC on `CNNSERVE_GRPC_PORT` (default 8001).
* `GET /models`: what is served, with status, provider and accuracy.
* `GET /zoo`: every architecture of the zoo, served or not, with its per-layer summary.
* `/models/{name}/activations`, `/filters`, `/occlusion`: what the network sees (feature maps, learned
  filters, occlusion sensitivity).

Errors always have the shape `{"error": message, "code": reason, "status": http_status}`.
"""


def _lifespan(
    settings: Settings, app_metrics: Metrics, group: WorkerGroup | None, provider: TracerProvider | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Models loaded in the background (the server is live at once), readiness, the gRPC front end, the
    loop-lag watcher; the spans still buffered are exported at shutdown."""
    tracer = provider.get_tracer(TRACER_NAME) if provider is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        status = StatusFile(group.status_dir, group.index) if group is not None else None

        def models_changed(states: list[ModelState]) -> None:
            if status is not None:
                status.publish(states)
            gc_tuning.freeze_long_lived()

        gc_tuning.tune()
        manager = ModelManager(settings, app_metrics, models_changed, tracer)
        app.state.manager = manager
        app.state.dataplane = DataPlane(manager, settings, tracer)
        app.state.views = Views(settings, app_metrics)
        app.state.readiness = (
            GroupReadiness(group.status_dir, group.size) if group is not None else LocalReadiness(manager)
        )
        await manager.start()
        if group is not None and group.replacement:
            app_metrics.worker_replacements.inc()
            await manager.scanned.wait()
        grpc_server = None
        if settings.grpc_port:
            grpc_server = GrpcServer(
                app.state.dataplane, app.state.readiness, app_metrics, reuse_port=group is not None
            )
            await grpc_server.start()
        lag_watcher = asyncio.create_task(watch_loop_lag(app_metrics.loop_lag.observe), name="loop-lag")
        try:
            yield
        finally:
            lag_watcher.cancel()
            with suppress(asyncio.CancelledError):
                await lag_watcher
            if grpc_server is not None:  # after uvicorn's own graceful shutdown of HTTP
                await grpc_server.stop(settings.graceful_shutdown_s)
            await manager.stop()
            flush = getattr(provider, "force_flush", None)  # the SDK's; the API's no-op provider has none
            if flush is not None:
                await asyncio.to_thread(flush)

    return lifespan


def create_app(
    settings: Settings | None = None, group: WorkerGroup | None = None, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    """The service's app; ``tracer_provider``: where its spans go (default: as ``OTEL_*`` say, usually nowhere)."""
    settings = settings if settings is not None else Settings()
    if group is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR") != str(group.metrics_dir):
        raise RuntimeError("a worker of a group needs PROMETHEUS_MULTIPROC_DIR set to the group's metrics folder")
    provider = tracer_provider if tracer_provider is not None else tracer_provider_from_environment()
    app_metrics = Metrics(group.metrics_dir if group is not None else None)
    # /docs and /redoc come from the page router, on vendored files (FastAPI's own load them from a CDN).
    app = ServiceApp(
        tracing=provider is not None,
        title="cnnserve",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan(settings, app_metrics, group, provider),
        docs_url=None,
        redoc_url=None,
        telemetry=fastapi_telemetry(provider),
    )
    app.state.settings = settings
    app.state.metrics = app_metrics
    app.state.zoo = ArchitectureCatalog()

    # Innermost first: the inference routes inside every other middleware, then each request's own
    # bookkeeping (id, body limit, metrics, access record); a deployment's own middleware outside all.
    if settings.fast_path:
        install_inference_routes(app, settings, tracing=provider is not None)
    json_logs = settings.log_format == "json"
    app.add_middleware(
        RequestMiddleware,
        metrics=app_metrics,
        max_bytes=settings.max_body_bytes,
        access_log=settings.access_log and json_logs,  # the text format has uvicorn's access log
        log_ids=json_logs,
    )
    install_error_handlers(app)

    protected = [Depends(require_api_key)]
    app.include_router(health.router)
    app.include_router(v2.health_router)
    app.include_router(metrics.router)
    app.include_router(models.router, dependencies=protected)
    app.include_router(predict.router, dependencies=protected)
    app.include_router(v2.router, dependencies=protected)
    app.include_router(zoo.router, dependencies=protected)
    app.include_router(visualize.router, dependencies=protected)
    app.include_router(page.router)
    install_openapi(app)
    return app
