"""Request-size limit as pure ASGI middleware (no per-request wrapper objects on the hot path).

A ``Content-Length`` over ``CNNSERVE_MAX_BODY_BYTES`` is refused before the body is read; a
chunked body is counted as it arrives and refused as soon as it crosses the limit. Either way
the answer is 413 in the one error shape.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import PayloadTooLarge, error_response

__all__ = ["BodyLimitMiddleware"]


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
        for key, value in scope["headers"]:
            if key == b"content-length":
                if value.isdigit() and int(value) > self.max_bytes:
                    await error_response(self._too_large(f"{int(value):,}"))(scope, receive, send)
                    return
                break
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large(f"over {self.max_bytes:,}")
            return message

        await self.app(scope, receive_limited, send)
