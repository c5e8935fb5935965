"""The OpenAPI document: FastAPI's, with what the service's middleware and handlers add to it.

FastAPI documents each route from its signature and ``responses``; three things it cannot see:

* the API key is optional: the key dependency (``deps.require_api_key``) only refuses requests
  when ``CNNSERVE_API_KEY`` is set, so an empty requirement ``{}`` joins the X-API-Key and bearer
  schemes (OpenAPI's way to say "or none"), and every operation behind it may answer ``401``;
* request-validation errors are answered in the one error shape (``errors.install_error_handlers``),
  not in FastAPI's ``HTTPValidationError``, so the ``422`` it adds documents ``ErrorResponse``.

Client generators and the Schemathesis contract test (``tests/service/test_openapi_fuzz.py``) read
the result.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

__all__ = ["RETRY_AFTER", "SERVER_FAULT", "install_openapi"]

# How the inference routes document their 500 and the Retry-After of their 503 (in their ``responses``).
SERVER_FAULT = (
    "the model failed (inference_failed) or computed NaN or ±Inf from finite inputs (non_finite_output): "
    "a server fault, logged and counted, never the answer to a bad request"
)
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait when the queue is full", "schema": {"type": "integer"}}}

_ERROR_REF = "#/components/schemas/ErrorResponse"
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"
_UNAUTHORIZED = {
    "description": "CNNSERVE_API_KEY is set and the request has no X-API-Key or bearer token with it",
    "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    "content": {"application/json": {"schema": {"$ref": _ERROR_REF}}},
}


def install_openapi(app: FastAPI) -> None:
    """Serve FastAPI's document amended as the module docstring says (built once, on first request)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _amend(generate())  # FastAPI caches the document in app.openapi_schema; amended there, once
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _amend(schema: dict[str, Any]) -> None:
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            security = operation.get("security")
            if security:
                if {} not in security:
                    security.append({})
                responses.setdefault("401", _UNAUTHORIZED)
            for response in responses.values():
                for media in response.get("content", {}).values():
                    if media.get("schema") == {"$ref": _FASTAPI_422}:
                        media["schema"] = {"$ref": _ERROR_REF}
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):  # in that order: the first refers to the second
        if f'"#/components/schemas/{name}"' not in json.dumps(schema):
            components.pop(name, None)
