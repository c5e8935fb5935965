"""Request-size limit as pure ASGI middleware (no per-request wrapper objects on the hot path).

A ``Content-Length`` over ``CNNSERVE_MAX_BODY_BYTES`` is refused before the body is read; a
chunked body is counted as it arrives and refused as soon as it crosses the limit. Either way
the answer is 413 in the one error shape. :class:`BodyLimit` holds both checks, so the inference
fast path (:mod:`service.fastpath`) applies exactly the same ones.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import PayloadTooLarge, error_response

__all__ = ["BodyLimit", "BodyLimitMiddleware"]


class BodyLimit:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def _too_large(self, size: str) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the request body is {size} bytes; the limit is {self.max_bytes:,} (CNNSERVE_MAX_BODY_BYTES)",
            details={"max_body_bytes": self.max_bytes},
        )

    def declared(self, content_length: bytes | None) -> PayloadTooLarge | None:
        """The error for a declared ``Content-Length`` (the first one) over the limit, else None."""
        if content_length is not None and content_length.isdigit() and int(content_length) > self.max_bytes:
            return self._too_large(f"{int(content_length):,}")
        return None

    def counting(self, receive: Receive) -> Receive:
        """``receive`` raising :class:`PayloadTooLarge` as soon as the body received crosses the limit."""
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large(f"over {self.max_bytes:,}")
            return message

        return receive_limited


def _content_length(scope: Scope) -> bytes | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            return value
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.limit = BodyLimit(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error = self.limit.declared(_content_length(scope))
        if error is not None:
            await error_response(error)(scope, receive, send)
            return
        await self.app(scope, self.limit.counting(receive), send)
