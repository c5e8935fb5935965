""":class:`ServiceApp`: FastAPI with the layers of its ASGI stack that the service leaves unused taken out.

FastAPI puts two layers of its own under Starlette's server-error middleware and above every user
middleware: its body-size limit (``FastAPI(max_body_size=...)``, unset here: the service's
:class:`service.http.middleware.RequestMiddleware` has the limit, in the one error shape) and its
exception telemetry (which records an exception on the request's span, so only of use when FastAPI
traces requests). Each is a coroutine frame per request; with neither in use :class:`ServiceApp`
leaves them out, and its ``__call__`` goes straight to the stack, since FastAPI's own only adds the
telemetry and ``root_path`` steps that are then not needed. Everything else (lifespan, websockets,
a set ``root_path``, tracing on) goes through FastAPI as usual.

Both are FastAPI internals of the release series ``pyproject.toml`` pins (:mod:`service.frameworks`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi._body_limit import AppBodyLimitMiddleware
from fastapi.telemetry._asgi import ExceptionTelemetryMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ServiceApp"]

_FASTAPI_LAYERS = (ExceptionTelemetryMiddleware, AppBodyLimitMiddleware)


class ServiceApp(FastAPI):
    def __init__(self, *, tracing: bool, **options: Any) -> None:
        super().__init__(**options)
        unused: list[type] = [] if tracing else [ExceptionTelemetryMiddleware]
        if self.max_body_size is None:
            unused.append(AppBodyLimitMiddleware)
        self._unused = tuple(unused)
        self._direct = not tracing and not self.root_path  # FastAPI's __call__ would add nothing

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        outer: Any = stack  # Starlette's ServerErrorMiddleware, then FastAPI's layers
        while isinstance(outer.app, _FASTAPI_LAYERS):
            if isinstance(outer.app, self._unused):
                outer.app = outer.app.app
            else:
                outer = outer.app
        return stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._direct and scope["type"] == "http":
            scope["app"] = self
            if self.middleware_stack is None:
                self.middleware_stack = self.build_middleware_stack()
            await self.middleware_stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
