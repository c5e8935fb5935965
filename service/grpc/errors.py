"""The service's errors as gRPC status codes, with the same messages as over HTTP.

The Open Inference Protocol's HTTP statuses map onto gRPC's codes as Triton and KServe map them;
the error's own code (``queue_full``, ``model_not_found``, ...) goes in the trailing metadata
``cnnserve-error-code``, and a full queue's retry hint both as ``retry-after`` (seconds, as the
HTTP header) and as ``grpc-retry-pushback-ms`` (gRPC's own retry pushback).
"""

from __future__ import annotations

import grpc

from ..core.errors import QueueFull, ServiceError

__all__ = ["ERROR_CODE_KEY", "status_of"]

ERROR_CODE_KEY = "cnnserve-error-code"

_CODES = {
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
}


def status_of(exc: ServiceError) -> tuple[grpc.StatusCode, tuple[tuple[str, str], ...]]:
    """The status code and trailing metadata of ``exc``."""
    code = _CODES.get(exc.status_code, grpc.StatusCode.INTERNAL)
    metadata: tuple[tuple[str, str], ...] = ((ERROR_CODE_KEY, exc.code),)
    if isinstance(exc, QueueFull) and exc.headers:
        seconds = exc.headers["Retry-After"]
        metadata += (("retry-after", seconds), ("grpc-retry-pushback-ms", str(int(seconds) * 1000)))
    return code, metadata
