"""The inference routes, answered by the innermost middleware of the app's one stack.

A profile of a saturated server put most of the event loop's time per request in FastAPI's
dependency solving, request handling and routing, not in the endpoints (docs/service.md, "The
cost of a request"). The four inference routes (``POST /predict``, ``/models/{name}/predict``,
``/v2/models/{name}/infer`` and its ``versions/{version}`` form) are therefore answered by
:class:`InferenceRoutes`, pure ASGI middleware that :func:`install_inference_routes` adds first,
so that it is the innermost of the app's middleware: every middleware outside it (FastAPI's own,
the service's body limit and metrics, and whatever a deployment adds later with
``app.add_middleware``) runs for these routes as for every other, and ``scope["app"]`` is set.
Everything else goes on to FastAPI's exception middleware and router.

What an endpoint does itself is what FastAPI's dependencies would do for it, in the same order:

1. the API key (401), with :func:`service.core.auth.check_api_key`;
2. ``/predict``: the query options, validated by FastAPI's own function against the route's own
   declaration (422 in the same shape), and cached by query string, since clients repeat them;
   v2: the model named in the path (404), as the ``ModelDep`` dependency;
3. the endpoint's own function (:func:`run_predict`, :func:`run_infer`).

An exception goes to the handler the app registered for its class (the one
:func:`service.http.errors.install_error_handlers` and any later one installed), looked up as
Starlette's exception middleware looks it up; one with no handler goes on, to the server-error
middleware, as from any route.

The routes stay declared in :mod:`service.http.routes`: they are the OpenAPI document, and with
``CNNSERVE_FAST_PATH=false`` (the benchmarks' old configuration) they serve instead, through
FastAPI's dependency injection. ``tests/service/test_fast_path.py`` checks that both answer
alike, request by request; ``tests/service/test_pipeline.py`` that an added middleware sees them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.utils import request_params_to_args
from fastapi.routing import APIRoute
from opentelemetry import trace
from starlette.datastructures import QueryParams, State
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import get_route_path
from starlette.types import ASGIApp, Receive, Scope, Send

from ..core.auth import bearer_credentials, check_api_key
from ..settings import Settings
from .errors import validation_error_response
from .routes import predict, v2
from .schemas import PredictOptions

__all__ = ["InferenceRoute", "InferenceRoutes", "install_inference_routes"]

_OPTIONS_CACHE_SIZE = 256  # distinct query strings remembered; cleared when full

Endpoint = Callable[[Request], Awaitable[Response]]


class InferenceRoute:
    """A declared route and its endpoint; ``path`` is the template (``scope["route"].path`` labels the metrics).

    It matches as Starlette's route does (a ``{parameter}`` is one non-empty segment), by comparing
    the path's segments with the template's: every request is tried against these routes first, so
    a miss must cost next to nothing.
    """

    def __init__(self, declared: APIRoute, endpoint: Endpoint) -> None:
        self.path = declared.path
        self.endpoint = endpoint
        parts = declared.path.split("/")
        self.segments = len(parts)
        self._literals = [None if part.startswith("{") else part for part in parts]
        self._parameters = [part[1:-1] for part in parts if part.startswith("{")]

    def path_params(self, parts: list[str]) -> dict[str, str] | None:
        """The parameters of a path split at "/" into :attr:`segments` parts, or None when it is not this route's."""
        values = []
        for part, literal in zip(parts, self._literals, strict=True):
            if literal is None:
                if not part:
                    return None
                values.append(part)
            elif part != literal:
                return None
        return dict(zip(self._parameters, values, strict=True))


def _handler(handlers: dict[Any, Any], exc: Exception) -> Callable[..., Awaitable[Response]] | None:
    """The app's handler for ``exc``'s class or its nearest base (Starlette's lookup); never the 500 one."""
    for cls in type(exc).__mro__:
        if cls in handlers and cls is not Exception:
            return handlers[cls]
    return None


class InferenceRoutes:
    """Pure ASGI middleware that answers the inference routes and passes every other request on."""

    def __init__(self, app: ASGIApp, routes: list[InferenceRoute], tracing: bool = False) -> None:
        self.app = app
        self.routes = routes
        self.tracing = tracing
        self._by_segments: dict[int, list[InferenceRoute]] = {}
        for route in routes:
            self._by_segments.setdefault(route.segments, []).append(route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            parts = get_route_path(scope).split("/")
            for route in self._by_segments.get(len(parts), ()):
                params = route.path_params(parts)
                if params is not None:
                    scope["route"] = route
                    scope["path_params"] = params
                    if self.tracing:  # what FastAPI's router does for its own routes' server spans
                        span = trace.get_current_span()
                        span.update_name(f"POST {route.path}")
                        span.set_attribute("http.route", route.path)
                    await self._serve(route, Request(scope, receive), send)
                    return
        await self.app(scope, receive, send)

    async def _serve(self, route: InferenceRoute, request: Request, send: Send) -> None:
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            handler = _handler(request.app.exception_handlers, exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(request.scope, request.receive, send)


def _credentials(scope: Scope) -> tuple[str | None, str | None]:
    """The first ``X-API-Key`` and the bearer token of the first ``Authorization`` (as Starlette's ``Headers.get``)."""
    api_key = authorization = None
    for key, value in scope["headers"]:
        if key == b"x-api-key" and api_key is None:
            api_key = value.decode("latin-1")
        elif key == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
    return api_key or None, bearer_credentials(authorization)


class _Endpoints:
    """The endpoints of the four routes, over what ``app.state`` holds."""

    def __init__(self, state: State, settings: Settings) -> None:
        self._state = state
        self._settings = settings
        self._options: dict[tuple[int, bytes], PredictOptions | list] = {}

    def _authorize(self, request: Request) -> None:
        if self._settings.api_key is not None:
            check_api_key(self._settings.api_key, *_credentials(request.scope))

    def predict(self, route: APIRoute, with_name: bool) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            self._authorize(request)
            options = self._query_options(route, request.scope["query_string"])
            if isinstance(options, list):
                return validation_error_response(options)
            name = request.path_params["name"] if with_name else None
            result = await predict.run_predict(request, self._state.dataplane, options, name)
            # What FastAPI does with the route's response_model: pydantic's JSON, by alias.
            return Response(result.model_dump_json(by_alias=True), media_type="application/json")

        return endpoint

    def infer(self, with_version: bool) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            self._authorize(request)
            params = request.path_params
            model = self._state.manager.get(params["name"])
            return await v2.run_infer(
                request, self._state.dataplane, model, params["version"] if with_version else None
            )

        return endpoint

    def _query_options(self, route: APIRoute, query_string: bytes) -> PredictOptions | list:
        """The route's query options, or FastAPI's validation errors for them."""
        key = (id(route), query_string)
        options = self._options.get(key)
        if options is None:
            values, errors = request_params_to_args(route.dependant.query_params, QueryParams(query_string))
            options = errors or values["query"]
            if len(self._options) >= _OPTIONS_CACHE_SIZE:
                self._options.clear()
            self._options[key] = options
        return options


def install_inference_routes(app: FastAPI, settings: Settings, tracing: bool = False) -> None:
    """Add :class:`InferenceRoutes` to ``app``; call it before any other ``add_middleware``, so it is innermost."""
    if app.user_middleware:
        raise RuntimeError("the inference routes' middleware must be the app's first (innermost) middleware")
    declared = {r.endpoint: r for r in (*predict.router.routes, *v2.router.routes) if isinstance(r, APIRoute)}
    endpoints = _Endpoints(app.state, settings)
    routes = [
        InferenceRoute(declared[predict.predict], endpoints.predict(declared[predict.predict], with_name=False)),
        InferenceRoute(declared[predict.predict_with], endpoints.predict(declared[predict.predict_with], True)),
        InferenceRoute(declared[v2.infer], endpoints.infer(with_version=False)),
        InferenceRoute(declared[v2.infer_version], endpoints.infer(with_version=True)),
    ]
    app.add_middleware(InferenceRoutes, routes=routes, tracing=tracing)
