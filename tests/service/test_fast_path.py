"""The inference fast path answers exactly as the FastAPI routes do.

Two servers on the same repository and settings (an API key and a small body limit included):
the default, whose inference routes are answered by ``service.http.inference``'s middleware, and
one with ``CNNSERVE_FAST_PATH=false``, where FastAPI's declared routes serve them with its dependencies. Every request
below goes to both; status, headers and body must be the same (the timings of /predict aside),
and so must the request metrics they leave behind.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.http.inference import InferenceRoutes

from .helpers import encode, pattern
from .live import LiveServer, make_settings

pytestmark = pytest.mark.xdist_group("service")

KEY = "fast-path-key"
AUTH = {"X-API-Key": KEY}
LIMIT = 64 * 1024
COMPARED_HEADERS = ("content-type", "www-authenticate", "retry-after", "inference-header-content-length", "location")
INFERENCE_ROUTES = {
    "/predict",
    "/models/{name}/predict",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
}


@pytest.fixture(scope="module")
def servers(repository: Path) -> Iterator[dict[str, LiveServer]]:
    settings = {"api_key": KEY, "max_body_bytes": LIMIT, "variants": ["fp32", "int8"]}
    started = {
        "fast": LiveServer(make_settings(repository, **settings)).start(),
        "fastapi": LiveServer(make_settings(repository, fast_path=False, **settings)).start(),
    }
    innermost = [started[kind].app.user_middleware[-1].cls for kind in ("fast", "fastapi")]
    assert innermost[0] is InferenceRoutes and InferenceRoutes not in innermost[1:]
    yield started
    for live in started.values():
        live.stop()


def _v2(x: np.ndarray, *, binary_out: bool = False, **parameters: Any) -> dict[str, Any]:
    """A v2 infer request with the tensor as binary data (Triton's extension)."""
    raw = x.astype(np.float32).tobytes()
    header = {
        "inputs": [
            {"name": "input", "shape": list(x.shape), "datatype": "FP32", "parameters": {"binary_data_size": len(raw)}}
        ],
        "parameters": {"binary_data_output": binary_out, **parameters},
    }
    head = json.dumps(header).encode()
    return {"content": head + raw, "headers": {**AUTH, "Inference-Header-Content-Length": str(len(head))}}


def _v2_json(x: np.ndarray, outputs: list[dict] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]
    }
    if outputs is not None:
        body["outputs"] = outputs
    return {"json": body, "headers": AUTH}


def _cases(cards: dict, grey: str, rgb: str) -> dict[str, tuple[str, str, Callable[[], dict[str, Any]]]]:
    shape = cards[grey].input.shape
    x = np.random.default_rng(7).standard_normal((2, *shape)).astype(np.float32)
    one = x[:1]
    version = cards[grey].latest_version
    png = encode(pattern((40, 52)))
    infer = f"/v2/models/{grey}/infer"
    big = b"\0" * (LIMIT + 1)
    return {
        "v2 binary in, JSON out": ("POST", infer, lambda: _v2(x)),
        "v2 binary in and out": ("POST", infer, lambda: _v2(x, binary_out=True)),
        "v2 int8 variant": ("POST", infer, lambda: _v2(one, variant="int8")),
        "v2 JSON, classification": (
            "POST",
            infer,
            lambda: _v2_json(x, [{"name": "probabilities", "parameters": {"classification": 3}}]),
        ),
        "v2 version": ("POST", f"/v2/models/{grey}/versions/{version}/infer", lambda: _v2(one)),
        "v2 gzip": ("POST", infer, lambda: _compressed(_v2(one), "gzip")),
        "v2 deflate": ("POST", infer, lambda: _compressed(_v2(one), "deflate")),
        "v2 brotli": ("POST", infer, lambda: {**_v2(one), "headers": {**AUTH, "Content-Encoding": "br"}}),
        "v2 unknown model": ("POST", "/v2/models/nope/infer", lambda: _v2(one)),
        "v2 unknown version": ("POST", f"/v2/models/{grey}/versions/99/infer", lambda: _v2(one)),
        "v2 version not a number": ("POST", f"/v2/models/{grey}/versions/latest/infer", lambda: _v2(one)),
        "v2 wrong shape": ("POST", infer, lambda: _v2(np.zeros((1, 1, 5, 5), np.float32))),
        "v2 garbage": ("POST", infer, lambda: {"content": b"\x00\xff garbage", "headers": AUTH}),
        "v2 unknown output": ("POST", infer, lambda: _v2_json(one, [{"name": "features"}])),
        "v2 no key": ("POST", infer, lambda: {"content": _v2(one)["content"]}),
        "v2 wrong key": ("POST", infer, lambda: {**_v2(one), "headers": {"X-API-Key": "wrong"}}),
        "v2 bearer key": (
            "POST",
            infer,
            lambda: {
                "content": _v2(one)["content"],
                "headers": {
                    "Authorization": f"Bearer {KEY}",
                    "Inference-Header-Content-Length": _v2(one)["headers"]["Inference-Header-Content-Length"],
                },
            },
        ),
        "v2 basic auth": ("POST", infer, lambda: {"content": b"{}", "headers": {"Authorization": "Basic eDp5"}}),
        "v2 over the limit": ("POST", infer, lambda: {"content": big, "headers": AUTH}),
        "v2 chunked over the limit": (
            "POST",
            infer,
            lambda: {"content": iter([big[:40_000], big[40_000:]]), "headers": AUTH},
        ),
        "v2 GET": ("GET", infer, lambda: {"headers": AUTH}),
        "predict tensor": (
            "POST",
            f"/models/{grey}/predict",
            lambda: {"json": {"tensor": x.tolist(), "probabilities": True, "top_k": 3}, "headers": AUTH},
        ),
        "predict tensor, options in the query": (
            "POST",
            "/predict",
            lambda: {"params": {"model": grey, "top_k": 1}, "json": {"tensor": one[0].tolist()}, "headers": AUTH},
        ),
        "predict image": (
            "POST",
            "/predict",
            lambda: {
                "params": {"model": rgb, "probabilities": "true"},
                "content": png,
                "headers": {**AUTH, "content-type": "image/png"},
            },
        ),
        "predict multipart": (
            "POST",
            "/predict",
            lambda: {
                "data": {"model": rgb, "top_k": "2"},
                "files": {"file": ("x.png", png, "image/png")},
                "headers": AUTH,
            },
        ),
        "predict multipart without a boundary": (
            "POST",
            "/predict",
            lambda: {"content": png, "headers": {**AUTH, "content-type": "multipart/form-data"}},
        ),
        "predict base64": (
            "POST",
            f"/models/{rgb}/predict",
            lambda: {"json": {"images": [base64.b64encode(png).decode()], "variant": "int8"}, "headers": AUTH},
        ),
        "predict bad query": (
            "POST",
            "/predict",
            lambda: {"params": {"top_k": "many", "unknown": 1}, "content": png, "headers": AUTH},
        ),
        "predict unknown model": (
            "POST",
            "/predict",
            lambda: {"params": {"model": "nope"}, "content": png, "headers": AUTH},
        ),
        "predict no model named": ("POST", "/predict", lambda: {"content": png, "headers": AUTH}),
        "predict path and body disagree": (
            "POST",
            f"/models/{grey}/predict",
            lambda: {"json": {"model": rgb, "tensor": one[0].tolist()}, "headers": AUTH},
        ),
        "predict wrong tensor": (
            "POST",
            f"/models/{grey}/predict",
            lambda: {"json": {"tensor": [[1.0, 2.0]]}, "headers": AUTH},
        ),
        "predict text": (
            "POST",
            f"/models/{grey}/predict",
            lambda: {"content": b"hi", "headers": {**AUTH, "content-type": "text/plain"}},
        ),
        "predict no key": ("POST", f"/models/{grey}/predict", lambda: {"content": png}),
        "predict over the limit": (
            "POST",
            "/predict",
            lambda: {"content": big, "headers": {**AUTH, "content-type": "image/png"}},
        ),
        "predict trailing slash": ("POST", "/predict/", lambda: {"content": png, "headers": AUTH}),
        "predict GET": ("GET", "/predict", lambda: {"headers": AUTH}),
    }


def _compressed(request: dict[str, Any], encoding: str) -> dict[str, Any]:
    body = gzip.compress(request["content"]) if encoding == "gzip" else zlib.compress(request["content"])
    return {"content": body, "headers": {**request["headers"], "Content-Encoding": encoding}}


def _comparable(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    headers = {k: response.headers[k] for k in COMPARED_HEADERS if k in response.headers}
    if "location" in headers:  # a redirect names the server it came from
        headers["location"] = urlsplit(headers["location"]).path
    body: Any = response.content
    length = response.headers.get("inference-header-content-length")
    if response.headers.get("content-type", "").startswith("application/json") or length:
        head = body[: int(length)] if length else body
        body = (json.loads(head), body[int(length) :] if length else b"")
        if isinstance(body[0], dict):
            body[0].pop("timings", None)  # the time /predict took differs from one request to the next
    return response.status_code, headers, body


def test_every_request_gets_the_same_answer(
    servers: dict[str, LiveServer], cards, grey_model: str, rgb_model: str
) -> None:
    cases = _cases(cards, grey_model, rgb_model)
    clients = {name: live.client(follow_redirects=False) for name, live in servers.items()}
    statuses = {}
    try:
        for case, (method, path, request) in cases.items():
            fast, fastapi = (_comparable(c.request(method, path, **request())) for c in clients.values())
            assert fast == fastapi, case
            statuses[case] = fast[0]
    finally:
        for c in clients.values():
            c.close()
    # The cases cover successes and every error the routes have.
    assert {200, 307, 401, 404, 405, 413, 415, 422} <= set(statuses.values()), statuses


def _inference_series(live: LiveServer) -> dict[tuple[str, ...], float]:
    with live.client() as c:
        text = c.get("/metrics").text
    series = {}
    for family in text_string_to_metric_families(text):
        if family.name in ("cnnserve_requests", "cnnserve_request_errors", "cnnserve_request_duration_seconds"):
            for sample in family.samples:
                if sample.labels.get("route") in INFERENCE_ROUTES and sample.name.endswith(("_total", "_count")):
                    series[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return series


def test_metrics_count_the_same_labels(servers: dict[str, LiveServer], cards, grey_model: str, rgb_model: str) -> None:
    for live in servers.values():
        with live.client() as c:
            for method, path, request in _cases(cards, grey_model, rgb_model).values():
                c.request(method, path, **request())
    fast, fastapi = (_inference_series(live) for live in servers.values())
    assert fast == fastapi
    assert any(dict(key[1:]).get("model") == grey_model and dict(key[1:]).get("status") == "200" for key in fast)
    assert any(dict(key[1:]).get("model") == "" and dict(key[1:]).get("status") == "404" for key in fast)
