"""The service's own middleware: one pure-ASGI layer for every HTTP request's bookkeeping.

:class:`RequestMiddleware` does, for every request:

* its id: ``X-Request-ID`` as the client sent it (1-128 visible ASCII characters), or one made
  here from this process's random prefix and a count (unique, and cheap), returned in the answer's
  headers and, with the JSON log format, in :data:`REQUEST_ID` for every log record;
* the body limit: a ``Content-Length`` over ``CNNSERVE_MAX_BODY_BYTES`` is refused before the
  body is read, a chunked body as soon as it crosses the limit (413 in the one error shape); the
  body's bytes received are kept in the scope (``BODY_BYTES_KEY``), which the log line of a client
  that went away mid-upload reports;
* its count and latency in the metrics, by route template (never the raw path), model and protocol,
  the 413s included;
* with the access log and the JSON log format, an access record: method, path, status, model,
  version, variant and duration (the text format keeps uvicorn's access log).

One layer rather than one per concern: a profile of the inference routes put each layer and its
wrapped ``send`` or ``receive`` at about a microsecond per request, and a LeNet-5 request over v2
binary costs about 150.
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
from ..observability.metrics import MODEL_STATE_KEY, Metrics, route_template
from .errors import BODY_BYTES_KEY, error_response

__all__ = ["BODY_BYTES_KEY", "RequestMiddleware", "record_servable"]

VERSION_STATE_KEY = "version"
VARIANT_STATE_KEY = "variant"
access_logger = logging.getLogger("service.access")


def _headers(scope: Scope) -> tuple[bytes | None, bytes | None]:
    """The first ``Content-Length`` and the client's ``X-Request-ID`` when a log can carry it as it is."""
    length = request_id = None
    for key, value in scope["headers"]:
        if key == b"content-length" and length is None:
            length = value
        elif key == b"x-request-id" and request_id is None:
            request_id = value if 0 < len(value) <= 128 and all(33 <= b <= 126 for b in value) else b""
    return length, request_id or None


class RequestMiddleware:
    """Every HTTP request's id, body limit, metrics and access record, in one layer."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, max_bytes: int, access_log: bool = False, log_ids: bool = False
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.access_log = access_log
        self.log_ids = log_ids  # only the JSON format writes the id into every record
        self._prefix = secrets.token_hex(6).encode("ascii")
        self._count = itertools.count(1)

    def _too_large(self, size: str) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the request body is {size} bytes; the limit is {self.max_bytes:,} (CNNSERVE_MAX_BODY_BYTES)",
            details={"max_body_bytes": self.max_bytes},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        length, request_id = _headers(scope)
        if request_id is None:
            request_id = b"%s-%x" % (self._prefix, next(self._count))
        token = REQUEST_ID.set(request_id) if self.log_ids else None
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id)]
            await send(message)

        async def receive_counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received = scope[BODY_BYTES_KEY] = scope[BODY_BYTES_KEY] + len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large(f"over {self.max_bytes:,}")
            return message

        try:
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                await error_response(self._too_large(f"{int(length):,}"))(scope, receive, send_with_id)
            else:
                scope[BODY_BYTES_KEY] = 0
                await self.app(scope, receive_counted, send_with_id)
        finally:
            self._finish(scope, status, time.perf_counter() - start)
            if token is not None:
                REQUEST_ID.reset(token)

    def _finish(self, scope: Scope, status: int, seconds: float) -> None:
        state = scope.get("state", {})
        self.metrics.observe_request(state.get(MODEL_STATE_KEY, ""), route_template(scope), status, seconds)
        if self.access_log:
            _access(scope, status, state, seconds)


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
    state = request.scope.setdefault("state", {})
    state[MODEL_STATE_KEY] = servable.name
    state[VERSION_STATE_KEY] = servable.version
    state[VARIANT_STATE_KEY] = servable.precision
