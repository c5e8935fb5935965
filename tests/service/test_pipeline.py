"""One request pipeline: a middleware added to the app sees every route, the inference routes included.

A middleware added after ``create_app`` (what a deployment adds: CORS, a request id, tracing)
must run for every request, whichever part of the app answers it: the plain inference routes
(:mod:`service.http.inference`), FastAPI's routes, the static files, a 404 and a 413 answered
before routing. Every documented operation is called once on a real server, with Starlette's own
``CORSMiddleware`` and a recording middleware added; each answer must carry the CORS header, and
the recorder must have seen each request with the app and the route in its scope.

A client that goes away mid-upload is one INFO line and a count in ``/metrics``, never a traceback.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from service.http.inference import InferenceRoute

from .live import LiveServer, make_settings

pytestmark = pytest.mark.xdist_group("service")

ORIGIN = "https://page.example"
LIMIT = 64 * 1024


class Recorder:
    """Pure ASGI middleware that keeps each HTTP request's scope (the route is in it once routed)."""

    def __init__(self, app: ASGIApp, seen: list[Scope]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append(scope)  # on the way in: the client may have its answer before this call returns
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def recorded(repository: Path) -> Iterator[tuple[LiveServer, list[Scope]]]:
    live = LiveServer(make_settings(repository, max_body_bytes=LIMIT, variants=["fp32"]))
    seen: list[Scope] = []
    live.app.add_middleware(Recorder, seen=seen)
    live.app.add_middleware(CORSMiddleware, allow_origins=[ORIGIN])
    yield live.start(), seen
    live.stop()


def _path(template: str) -> str:
    values = {"name": "lenet5", "version": "1", "arch": "lenet5", "index": "0"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), template)


def _operations(app: Any) -> list[tuple[str, str]]:
    paths = app.openapi()["paths"]
    return [(method.upper(), template) for template, item in paths.items() for method in item]


def test_an_added_middleware_runs_for_every_route(recorded: tuple[LiveServer, list[Scope]]) -> None:
    live, seen = recorded
    operations = _operations(live.app)
    assert ("POST", "/predict") in operations and ("POST", "/v2/models/{name}/infer") in operations
    extra = [("GET", "/static/js/main.js"), ("GET", "/no/such/path"), ("POST", "/predict")]
    with live.client(headers={"Origin": ORIGIN}) as client:
        for method, template in [*operations, *extra]:
            seen.clear()
            content = b"x" * (LIMIT + 1) if (method, template) == extra[-1] else b"{}"
            response = client.request(method, _path(template), content=content)
            assert response.status_code < 500, (method, template, response.text)
            assert response.headers.get("access-control-allow-origin") == ORIGIN, (method, template)
            assert [s["path"] for s in seen] == [_path(template)], (method, template)
            assert seen[0].get("app") is live.app, (method, template)


def test_the_inference_routes_run_inside_the_stack(recorded: tuple[LiveServer, list[Scope]]) -> None:
    live, seen = recorded
    seen.clear()
    with live.client(headers={"Origin": ORIGIN}) as client:
        tensor = {"model": "lenet5", "tensor": [[[0.0] * 32] * 32]}
        assert client.post("/predict", json=tensor).status_code == 200
        v2 = {"inputs": [{"name": "input", "shape": [1, 1, 32, 32], "datatype": "FP32", "data": [0.0] * 1024}]}
        assert client.post("/v2/models/lenet5/infer", json=v2).status_code == 200
    routes = [s.get("route") for s in seen]
    assert [type(r) for r in routes] == [InferenceRoute, InferenceRoute]
    assert [r.path for r in routes] == ["/predict", "/v2/models/{name}/infer"]


def _stalled_upload(port: int, declared: int, sent: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    head = (
        "POST /predict?model=lenet5 HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    sock.sendall(head.encode() + b"\x89PNG" + b"\0" * (sent - 4))
    return sock


def _disconnects(client: httpx.Client) -> float:
    found = re.search(
        r'^cnnserve_client_disconnects_total\{route="/predict"\} (\S+)$', client.get("/metrics").text, re.M
    )
    return float(found.group(1)) if found else 0.0


def test_a_client_gone_mid_upload_is_one_line_and_a_count(
    recorded: tuple[LiveServer, list[Scope]], caplog: pytest.LogCaptureFixture
) -> None:
    live, _ = recorded
    stalled = 40
    with live.client() as client:
        before = _disconnects(client)
        caplog.set_level(logging.INFO)
        sockets = [_stalled_upload(live.port, declared=50_000, sent=1_000) for _ in range(stalled)]
        time.sleep(0.3)  # every request is reading its body
        for sock in sockets:
            sock.close()
        deadline = time.monotonic() + 10
        while _disconnects(client) < before + stalled and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _disconnects(client) == before + stalled
        assert client.get("/healthz").status_code == 200, "the server goes on"
    lines = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(lines) == stalled and all(r.levelno == logging.INFO and r.exc_info is None for r in lines)
    assert all("POST /predict" in r.getMessage() and "1000 body bytes" in r.getMessage() for r in lines)
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert errors == [], [r.getMessage() for r in errors]


def _layers(app: Any) -> list[str]:
    """The class names of the app's ASGI stack, outermost first, down to the inference routes."""
    names, layer = [], app.build_middleware_stack()
    while layer is not None and names[-1:] != ["InferenceRoutes"]:
        names.append(type(layer).__name__)
        layer = getattr(layer, "app", None)
    return names


def test_fastapis_unused_layers_are_left_out_and_the_used_ones_kept(repository: Path) -> None:
    """Without tracing, FastAPI's exception telemetry and its (unset) body limit are not in the stack."""
    from opentelemetry.sdk.trace import TracerProvider

    from service.app import create_app

    settings = make_settings(repository)
    plain = _layers(create_app(settings))
    assert plain == ["ServerErrorMiddleware", "RequestMiddleware", "InferenceRoutes"], plain
    traced = _layers(create_app(settings, tracer_provider=TracerProvider()))
    assert traced == ["ServerErrorMiddleware", "ExceptionTelemetryMiddleware", "RequestMiddleware", "InferenceRoutes"]
