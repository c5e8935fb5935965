"""Domain errors and their one JSON shape (:class:`service.schemas.ErrorResponse`).

Code raises these anywhere below a route; :func:`install_error_handlers` (called once, by
``create_app``) maps them, FastAPI's validation errors and Starlette's HTTP errors to the same
shape. Its ``error`` field carries the message, which is what the v2 protocol (and
``tritonclient``) reads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from .schemas import ErrorResponse

__all__ = [
    "ArchitectureNotFound",
    "ImageTooLarge",
    "InferenceFailed",
    "InvalidInput",
    "LayersNotRecorded",
    "LimitExceeded",
    "LoadError",
    "ModelNotFound",
    "ModelNotReady",
    "NonFiniteOutput",
    "PayloadTooLarge",
    "QueueFull",
    "SampleNotFound",
    "SampleUnavailable",
    "ServiceError",
    "ServiceNotReady",
    "Unauthorized",
    "UnknownLayer",
    "UnsupportedMediaType",
    "VariantNotFound",
    "VersionNotFound",
    "error_response",
    "install_error_handlers",
    "log_service_error",
    "log_unexpected",
    "unexpected_error_response",
    "validation_error_response",
]

logger = logging.getLogger(__name__)


class LoadError(Exception):
    """A model version or variant could not be loaded (bad hash, unreadable file, bad graph)."""


class ServiceError(Exception):
    """An error with an HTTP status; the message is shown to the client."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, details: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers

    def __str__(self) -> str:
        return self.message


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str = "missing or wrong API key") -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class ModelNotFound(ServiceError):
    status_code = 404
    code = "model_not_found"


class VersionNotFound(ModelNotFound):
    code = "version_not_found"


class VariantNotFound(ModelNotFound):
    code = "variant_not_found"


class ArchitectureNotFound(ServiceError):
    status_code = 404
    code = "architecture_not_found"


class SampleNotFound(ModelNotFound):
    code = "sample_not_found"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class ImageTooLarge(PayloadTooLarge):
    """More pixels than CNNSERVE_MAX_IMAGE_PIXELS: refused before decoding (decompression bombs)."""

    code = "image_too_large"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    code = "unsupported_media_type"


class InvalidInput(ServiceError):
    status_code = 422
    code = "invalid_input"


class UnknownLayer(InvalidInput):
    """A layer name that the model's layer record does not hold; ``details`` lists the valid ones."""

    code = "unknown_layer"


class LimitExceeded(InvalidInput):
    """A view asked for more than a CNNSERVE_* limit allows; the message says how to fit under it."""

    code = "limit_exceeded"


class LayersNotRecorded(ServiceError):
    """The version was published before its layers' tensors were recorded: it needs a rebuild."""

    status_code = 409
    code = "layers_not_recorded"


class InferenceFailed(ServiceError):
    status_code = 500
    code = "inference_failed"


class NonFiniteOutput(ServiceError):
    """The model computed NaN or ±Inf from finite inputs (a float16 overflow, say): its fault, not the request's."""

    status_code = 500
    code = "non_finite_output"


class ModelNotReady(ServiceError):
    status_code = 503
    code = "model_not_ready"


class ServiceNotReady(ServiceError):
    status_code = 503
    code = "not_ready"


class SampleUnavailable(ServiceError):
    """A sample image the card lists is missing or changed on disk: the repository is damaged."""

    status_code = 503
    code = "sample_unavailable"


class QueueFull(ServiceError):
    status_code = 503
    code = "queue_full"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})


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


def log_service_error(method: str, path: str, exc: ServiceError) -> None:
    """A server-side error (5xx) is logged; a client's mistake is only answered."""
    if exc.status_code >= 500:
        logger.warning("%s %s: %s", method, path, exc.message)


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    log_service_error(request.method, request.url.path, exc)
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


def log_unexpected(method: str, path: str, exc: BaseException) -> None:
    logger.error("unhandled error on %s %s", method, path, exc_info=exc)


def unexpected_error_response() -> Response:
    return _render(500, ServiceError.code, "internal server error")


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Registered for Exception, Starlette's last resort: still the one shape, and logged with the trace.
    log_unexpected(request.method, request.url.path, exc)
    return unexpected_error_response()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
