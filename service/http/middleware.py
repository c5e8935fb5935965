"""The app's own middleware, pure ASGI (no per-request wrapper objects on the hot path).

:class:`BodyLimitMiddleware` refuses a ``Content-Length`` over ``CNNSERVE_MAX_BODY_BYTES`` before
the body is read, and counts a chunked body as it arrives, refusing it as soon as it crosses the
limit: 413 in the one error shape either way. It also keeps the count of the body's bytes in the
scope (``BODY_BYTES_KEY``), which the log line of a client that went away mid-upload reports.

:class:`RequestMiddleware` gives every HTTP request its id, counts and times it by route template
(never the raw path) and model, and writes its access record (in the JSON log format).
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.errors import PayloadTooLarge
from ..core.model_manager import Servable
from ..observability.logs import REQUEST_ID
from ..observability.metrics import MODEL_STATE_KEY, UNMATCHED, Metrics
from .errors import BODY_BYTES_KEY, error_response

__all__ = ["BODY_BYTES_KEY", "BodyLimitMiddleware", "RequestMiddleware", "record_servable"]

VERSION_STATE_KEY = "version"
VARIANT_STATE_KEY = "variant"
access_logger = logging.getLogger("service.access")


def _content_length(scope: Scope) -> bytes | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            return value
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, size: str) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the request body is {size} bytes; the limit is {self.max_bytes:,} (CNNSERVE_MAX_BODY_BYTES)",
            details={"max_body_bytes": self.max_bytes},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(self._too_large(f"{int(declared):,}"))(scope, receive, send)
            return
        scope[BODY_BYTES_KEY] = 0

        async def receive_counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received = scope[BODY_BYTES_KEY] = scope[BODY_BYTES_KEY] + len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large(f"over {self.max_bytes:,}")
            return message

        await self.app(scope, receive_counted, send)


def _request_id(scope: Scope) -> str | None:
    """The client's ``X-Request-ID`` when a log can carry it as it is (1-128 visible ASCII characters)."""
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            return value.decode("ascii") if 0 < len(value) <= 128 and all(33 <= b <= 126 for b in value) else None
    return None


class _RequestIds:
    """Ids for requests that come without one: this process's random prefix and a count (unique, and cheap)."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(6)
        self._count = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}-{next(self._count):x}"


class RequestMiddleware:
    """Every HTTP request's own bookkeeping, in one layer.

    * its id: ``X-Request-ID`` as the client sent it, or one made here, in :data:`REQUEST_ID` while
      the request is answered (every log record carries it) and returned in the answer's headers;
    * its count and latency in the metrics, by route template (never the raw path) and model;
    * with ``access_log`` and the JSON log format, an access record: method, path, status, model,
      version, variant and duration (the text format keeps uvicorn's access log).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self._ids = _RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = _request_id(scope) or self._ids.next()
        header = (b"x-request-id", request_id.encode("ascii"))
        token = REQUEST_ID.set(request_id)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            state = scope.get("state", {})
            self.metrics.observe_request(state.get(MODEL_STATE_KEY, ""), template, status, seconds)
            if self.access_log:
                _access(scope, status, state, seconds)
            REQUEST_ID.reset(token)


def _access(scope: Scope, status: int, state: dict, seconds: float) -> None:
    extra = {
        "method": scope["method"],
        "path": scope["path"],
        "status": status,
        "model": state.get(MODEL_STATE_KEY),
        "version": state.get(VERSION_STATE_KEY),
        "variant": state.get(VARIANT_STATE_KEY),
        "duration_ms": round(seconds * 1e3, 3),
    }
    access_logger.info("%s %s %d %.1f ms", scope["method"], scope["path"], status, seconds * 1e3, extra=extra)


def record_servable(request: Request, servable: Servable) -> None:
    """What answers the request, for its metrics and its access record: the model, version and variant."""
    request.state.model = servable.name
    state = request.scope["state"]
    state[VERSION_STATE_KEY] = servable.version
    state[VARIANT_STATE_KEY] = servable.precision
