"""The inference routes served without FastAPI's routing, dependency injection and middleware stack.

The profile of a saturated server put most of the event loop's time per request in routing,
dependency solving and the layers of middleware, not in the endpoints. This module answers the
four inference routes (``POST /predict``, ``/models/{name}/predict``, ``/v2/models/{name}/infer``
and its ``versions/{version}`` form) before any of that, doing the same steps in the same order:

1. the body limit on ``Content-Length`` (413), as :class:`service.middleware.BodyLimitMiddleware`,
   which answers before routing (so the request counts under the route ``unmatched`` there and here);
2. the API key (401), with :func:`service.deps.check_api_key`;
3. ``/predict``: the query options, validated by FastAPI's own function against the route's own
   declaration (422 in the same shape), and cached by query string, since clients repeat them;
   v2: the model named in the path (404), as the ``ModelDep`` dependency;
4. the endpoint's own function (:func:`run_predict`, :func:`run_infer`) with a Starlette
   ``Request`` whose body is counted against the limit (413 for a chunked body);
5. errors rendered and logged by the functions the exception handlers use; the request counted
   by the same metrics, under the route's template and the model the endpoint resolved.

The routes stay declared in :mod:`service.routers`: they are the OpenAPI documentation, and with
``CNNSERVE_FAST_PATH=false`` they serve. Anything else (another method or path, or an app
mounted under a ``root_path``) goes to FastAPI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi.dependencies.utils import request_params_to_args
from fastapi.routing import APIRoute
from starlette.datastructures import QueryParams, State
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .deps import bearer_credentials, check_api_key
from .errors import (
    ServiceError,
    error_response,
    log_service_error,
    log_unexpected,
    unexpected_error_response,
    validation_error_response,
)
from .metrics import MODEL_STATE_KEY, UNMATCHED, Metrics
from .middleware import BodyLimit
from .routers import predict, v2
from .schemas import PredictOptions
from .settings import Settings

__all__ = ["FastPath"]

_OPTIONS_CACHE_SIZE = 256  # distinct query strings remembered; cleared when full


@dataclass(frozen=True, slots=True)
class Match:
    """An inference route (as declared: its template labels the metrics, its query fields are /predict's
    options) and the path's parameters."""

    route: APIRoute
    name: str | None
    version: str | None

    @property
    def is_predict(self) -> bool:
        return self.route.endpoint in (predict.predict, predict.predict_with)


def _headers(scope: Scope) -> tuple[bytes | None, str | None, str | None]:
    """The first ``Content-Length``, ``X-API-Key`` and ``Authorization`` (as Starlette's ``Headers.get``)."""
    length = api_key = authorization = None
    for key, value in scope["headers"]:
        if key == b"content-length":
            length = value if length is None else length
        elif key == b"x-api-key":
            api_key = value.decode("latin-1") if api_key is None else api_key
        elif key == b"authorization":
            authorization = value.decode("latin-1") if authorization is None else authorization
    return length, api_key, authorization


class FastPath:
    """Matches and serves the inference routes declared in :mod:`service.routers` (``app.state`` holds the rest)."""

    def __init__(self, state: State, settings: Settings, metrics: Metrics) -> None:
        declared = {r.endpoint: r for r in (*predict.router.routes, *v2.router.routes) if isinstance(r, APIRoute)}
        self._predict = declared[predict.predict]
        self._predict_with = declared[predict.predict_with]
        self._infer = declared[v2.infer]
        self._infer_version = declared[v2.infer_version]
        self._state = state
        self._settings = settings
        self._metrics = metrics
        self._limit = BodyLimit(settings.max_body_bytes)
        self._options: dict[tuple[int, bytes], PredictOptions | list] = {}

    def match(self, scope: Scope) -> Match | None:
        """The inference route ``scope`` is for, with its path parameters; None for anything else."""
        if scope["method"] != "POST" or scope.get("root_path"):
            return None
        path: str = scope["path"]
        if path == "/predict":
            return Match(self._predict, None, None)
        parts = path.split("/")
        if not all(parts[1:]):  # an empty segment never matches a {parameter} (Starlette: [^/]+)
            return None
        if len(parts) == 4 and parts[1] == "models" and parts[3] == "predict":
            return Match(self._predict_with, parts[2], None)
        if len(parts) == 5 and parts[1:3] == ["v2", "models"] and parts[4] == "infer":
            return Match(self._infer, parts[3], None)
        if len(parts) == 7 and parts[1:3] == ["v2", "models"] and parts[4] == "versions" and parts[6] == "infer":
            return Match(self._infer_version, parts[3], parts[5])
        return None

    async def serve(self, match: Match, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        length, api_key, authorization = _headers(scope)
        too_large = self._limit.declared(length)
        if too_large is not None:  # the body limit answers before any routing: an unmatched request there too
            await error_response(too_large)(scope, receive, send)
            self._metrics.observe_request("", UNMATCHED, too_large.status_code, time.perf_counter() - start)
            return
        try:
            response = await self._response(match, scope, receive, api_key, authorization)
        except Exception as exc:  # what Starlette's ServerErrorMiddleware does: the one shape, logged, re-raised
            log_unexpected(scope["method"], Request(scope).url.path, exc)
            await unexpected_error_response()(scope, receive, send)
            self._observe(match, scope, 500, start)
            raise
        await response(scope, receive, send)
        self._observe(match, scope, response.status_code, start)

    def _observe(self, match: Match, scope: Scope, status: int, start: float) -> None:
        model = scope.get("state", {}).get(MODEL_STATE_KEY, "")
        self._metrics.observe_request(model, match.route.path, status, time.perf_counter() - start)

    async def _response(
        self, match: Match, scope: Scope, receive: Receive, api_key: str | None, authorization: str | None
    ) -> Response:
        request = Request(scope, self._limit.counting(receive))
        try:
            check_api_key(self._settings.api_key, api_key or None, bearer_credentials(authorization))
            if match.is_predict:
                return await self._predict_response(request, match.route, match.name)
            return await self._infer_response(request, match.name, match.version)
        except ServiceError as exc:
            log_service_error(scope["method"], request.url.path, exc)
            return error_response(exc)

    async def _predict_response(self, request: Request, route: APIRoute, name: str | None) -> Response:
        options = self._query_options(route, request.scope["query_string"])
        if isinstance(options, list):
            return validation_error_response(options)
        result = await predict.run_predict(request, self._state.dataplane, options, name)
        # What FastAPI does with the route's response_model: pydantic's JSON, by alias.
        return Response(result.model_dump_json(by_alias=True), media_type="application/json")

    async def _infer_response(self, request: Request, name: str | None, version: str | None) -> Response:
        assert name is not None
        return await v2.run_infer(request, self._state.dataplane, self._state.manager.get(name), version)

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
