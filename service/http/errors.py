"""The one JSON error shape (:class:`service.http.schemas.ErrorResponse`) for every HTTP answer that is an error.

Code below a route raises :class:`service.core.errors.ServiceError`; :func:`install_error_handlers`
(called once, by ``create_app``) maps those, FastAPI's validation errors and Starlette's HTTP
errors to the same shape. Its ``error`` field carries the message, which is what the v2 protocol
(and ``tritonclient``) reads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from ..core.errors import InvalidInput, ServiceError
from ..observability.metrics import route_template
from .schemas import ErrorResponse

__all__ = ["BODY_BYTES_KEY", "error_response", "install_error_handlers", "validation_error_response"]

logger = logging.getLogger(__name__)

BODY_BYTES_KEY = "cnnserve.body_bytes"  # the request body's bytes received so far (RequestMiddleware keeps it)
CLIENT_CLOSED_REQUEST = 499


def _render(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response:
    body = ErrorResponse(error=message, code=code, status=status, details=details).model_dump_json(exclude_none=True)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def error_response(exc: ServiceError) -> Response:
    """The response for ``exc``; middleware that answers before routing uses it too."""
    return _render(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    if exc.status_code >= 500:  # a server-side error is logged; a client's mistake is only answered
        logger.warning("%s %s: %s", request.method, request.url.path, exc.message)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no endpoint at {request.url.path}; see /docs"
    return _render(exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), message, None, exc.headers)


def _clean(error: dict[str, Any]) -> dict[str, Any]:
    # pydantic's error dicts may hold the offending input (possibly huge) and exception objects.
    return {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type", "")}


def validation_error_response(errors: Sequence[Any]) -> Response:
    """The 422 for FastAPI's request validation errors (a query parameter of the wrong type, ...)."""
    cleaned = [_clean(e) for e in errors]
    summary = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in cleaned[:5])
    return _render(422, InvalidInput.code, f"invalid request: {summary}", cleaned)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return validation_error_response(exc.errors())


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Registered for Exception, Starlette's last resort: still the one shape, and logged with the trace.
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _render(500, ServiceError.code, "internal server error")


async def _client_disconnect(request: Request, exc: Exception) -> Response:
    """A client that went away before its body arrived: one line and a count, no traceback (any client can do it).

    The answer is never sent (uvicorn drops what is sent after a disconnect); it is there for the
    metrics, which count the request under status 499, nginx's "client closed request".
    """
    received = request.scope.get(BODY_BYTES_KEY, 0)
    logger.info("%s %s: the client disconnected after %d body bytes", request.method, request.url.path, received)
    request.app.state.metrics.client_disconnects.labels(route_template(request.scope)).inc()
    return Response(status_code=CLIENT_CLOSED_REQUEST)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
