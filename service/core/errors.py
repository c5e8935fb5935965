"""The service's errors, whatever the protocol: each has the HTTP status and the code that say what went wrong.

The core and the views raise them; each protocol front end renders them in its own shape
(:mod:`service.http.errors`: the one JSON error body). ``status_code`` is the HTTP status of the
Open Inference Protocol's REST binding, which its gRPC binding maps to a status code of its own.
"""

from __future__ import annotations

from typing import Any, ClassVar

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
]


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
