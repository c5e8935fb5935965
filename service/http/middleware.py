"""The app's own middleware, pure ASGI (no per-request wrapper objects on the hot path).

:class:`BodyLimitMiddleware` refuses a ``Content-Length`` over ``CNNSERVE_MAX_BODY_BYTES`` before
the body is read, and counts a chunked body as it arrives, refusing it as soon as it crosses the
limit: 413 in the one error shape either way. It also keeps the count of the body's bytes in the
scope (``BODY_BYTES_KEY``), which the log line of a client that went away mid-upload reports.

:class:`MetricsMiddleware` counts and times every HTTP request by route template (never the raw
path) and model.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.errors import PayloadTooLarge
from ..observability.metrics import MODEL_STATE_KEY, UNMATCHED, Metrics
from .errors import BODY_BYTES_KEY, error_response

__all__ = ["BODY_BYTES_KEY", "BodyLimitMiddleware", "MetricsMiddleware"]


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


class MetricsMiddleware:
    """Counts and times every HTTP request by route template (never the raw path) and model."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            model = scope.get("state", {}).get(MODEL_STATE_KEY, "")
            self.metrics.observe_request(model, template, status, time.perf_counter() - start)
