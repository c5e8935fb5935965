"""The inference routes as plain Starlette routes: first in the app's router, inside its one middleware stack.

A profile of a saturated server put most of the event loop's time per request in FastAPI's
dependency solving and request handling, not in the endpoints (docs/service.md, "The cost of a
request"). The four inference routes (``POST /predict``, ``/models/{name}/predict``,
``/v2/models/{name}/infer`` and its ``versions/{version}`` form) are therefore
:class:`InferenceRoute` s: Starlette routes whose endpoint is a small ASGI app, put ahead of
every FastAPI route by :func:`install_inference_routes`. Everything else about a request is the
same as for any route, because they sit inside the same stack: every middleware (the body limit,
the metrics, and any added later) sees them, ``scope["app"]`` and ``request.app`` are set, and
errors are raised to the app's exception handlers. What an endpoint does itself is what FastAPI's
dependencies would do for it, in the same order:

1. the API key (401), with :func:`service.http.deps.check_api_key`;
2. ``/predict``: the query options, validated by FastAPI's own function against the route's own
   declaration (422 in the same shape), and cached by query string, since clients repeat them;
   v2: the model named in the path (404), as the ``ModelDep`` dependency;
3. the endpoint's own function (:func:`run_predict`, :func:`run_infer`).

The routes stay declared in :mod:`service.http.routes`: they are the OpenAPI document, and with
``CNNSERVE_FAST_PATH=false`` (the benchmarks' old configuration) they serve instead, through
FastAPI's dependency injection. ``tests/service/test_fast_path.py`` checks that both answer
alike, request by request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from fastapi.dependencies.utils import request_params_to_args
from fastapi.routing import APIRoute
from starlette.datastructures import QueryParams, State
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from ..settings import Settings
from .deps import bearer_credentials, check_api_key
from .errors import validation_error_response
from .routes import predict, v2
from .schemas import PredictOptions

__all__ = ["InferenceRoute", "install_inference_routes"]

_OPTIONS_CACHE_SIZE = 256  # distinct query strings remembered; cleared when full

Endpoint = Callable[[Request], Awaitable[Response]]


class _Asgi:
    """An endpoint as an ASGI app (Starlette would wrap a function in a second exception layer)."""

    __slots__ = ("endpoint",)

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive))
        await response(scope, receive, send)


class InferenceRoute(Route):
    """A declared inference route served by ``endpoint``; ``scope["route"]`` is set as FastAPI's routes set it."""

    def __init__(self, declared: APIRoute, endpoint: Endpoint) -> None:
        super().__init__(declared.path, _Asgi(endpoint), methods=["POST"], name=declared.name, include_in_schema=False)
        self.declared = declared

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


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


def install_inference_routes(app: FastAPI, settings: Settings) -> list[InferenceRoute]:
    """Put the four inference routes first in ``app``'s router (after its routers are included)."""
    declared = {r.endpoint: r for r in (*predict.router.routes, *v2.router.routes) if isinstance(r, APIRoute)}
    endpoints = _Endpoints(app.state, settings)
    routes = [
        InferenceRoute(declared[predict.predict], endpoints.predict(declared[predict.predict], with_name=False)),
        InferenceRoute(declared[predict.predict_with], endpoints.predict(declared[predict.predict_with], True)),
        InferenceRoute(declared[v2.infer], endpoints.infer(with_version=False)),
        InferenceRoute(declared[v2.infer_version], endpoints.infer(with_version=True)),
    ]
    app.router.routes[:0] = routes
    return routes
