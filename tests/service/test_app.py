"""Cross-cutting behaviour of the app: API key, body limit, one error shape, docs, no torch, the CLI."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .live import make_settings

pytestmark = pytest.mark.xdist_group("service")

SERVICE = Path(__file__).resolve().parents[2] / "service"


def test_api_key_guards_everything_but_probes_and_metrics(repository: Path, grey_model: str, start_server) -> None:
    live = start_server(make_settings(repository, api_key="s3cret", variants=["fp32"]))
    with live.client() as c:
        for path in (
            "/healthz",
            "/readyz",
            "/v2/health/live",
            "/v2/health/ready",
            "/metrics",
            "/docs",
            "/openapi.json",
        ):
            assert c.get(path).status_code == 200, path
        for method, path in (
            ("GET", "/models"),
            ("GET", f"/models/{grey_model}"),
            ("POST", "/predict"),
            ("GET", "/v2"),
            ("GET", f"/v2/models/{grey_model}"),
            ("POST", f"/v2/models/{grey_model}/infer"),
            ("GET", f"/models/{grey_model}/summary"),
            ("POST", f"/models/{grey_model}/preprocess"),
            ("GET", f"/models/{grey_model}/samples"),
            ("GET", f"/models/{grey_model}/samples/0-0.png"),
            ("GET", "/zoo"),
            ("GET", "/zoo/vgg16"),
            ("GET", "/zoo/vgg16/summary"),
        ):
            for headers in (
                {},
                {"X-API-Key": "wrong"},
                {"Authorization": "Bearer wrong"},
                {"Authorization": "Basic czNjcmV0"},
            ):
                r = c.request(method, path, headers=headers)
                assert r.status_code == 401, (path, headers)
                assert r.json()["code"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
        assert c.get("/models", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_body_limit_is_413(repository: Path, grey_model: str, start_server) -> None:
    live = start_server(make_settings(repository, max_body_bytes=64 * 1024, variants=["fp32"]))
    big = b"\0" * (100 * 1024)
    with live.client() as c:
        for path in (f"/models/{grey_model}/predict", f"/v2/models/{grey_model}/infer"):
            r = c.post(path, content=big, headers={"content-type": "image/png"})  # Content-Length over the limit
            assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
            r = c.post(
                path, content=iter([big[:40_000], big[40_000:]]), headers={"content-type": "image/png"}
            )  # chunked
            assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
        r = c.post(f"/models/{grey_model}/predict", files={"file": ("x.png", big, "image/png")})
        assert r.status_code == 413
        assert c.get("/v2/health/ready").status_code == 200


def test_one_error_shape_for_framework_errors(client: httpx.Client, grey_model: str) -> None:
    for r, status in (
        (client.get("/no/such/thing"), 404),
        (client.delete("/models"), 405),
        (client.get("/predict"), 405),
        (client.post(f"/models/{grey_model}/predict", params={"top_k": "many"}, content=b"x"), 422),
    ):
        assert r.status_code == status
        body = r.json()
        assert set(body) <= {"error", "code", "status", "details"} and body["status"] == status and body["error"]


def test_openapi_documents_every_endpoint_with_examples(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/predict",
        "/models",
        "/models/{name}",
        "/models/{name}/summary",
        "/models/{name}/predict",
        "/models/{name}/preprocess",
        "/models/{name}/samples",
        "/models/{name}/samples/{file}",
        "/zoo",
        "/zoo/{arch}",
        "/zoo/{arch}/summary",
        "/metrics",
        "/healthz",
        "/readyz",
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
    ):
        assert path in paths, path
    predict_body = paths["/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/*", "application/json"} <= set(predict_body)
    assert predict_body["application/json"]["examples"]
    assert paths["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert "$defs" not in str(paths["/v2/models/{name}/infer"]["post"]["requestBody"])


def test_openapi_declares_the_optional_api_key_and_the_one_error_shape(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert (schemes["APIKeyHeader"]["in"], schemes["APIKeyHeader"]["name"]) == ("header", "X-API-Key")
    assert (schemes["HTTPBearer"]["type"], schemes["HTTPBearer"]["scheme"]) == ("http", "bearer")
    probes = {"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/metrics"}
    error = {"$ref": "#/components/schemas/ErrorResponse"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if path in probes:
                assert "security" not in operation and "401" not in responses, path
            else:  # the key or the bearer token, or nothing (`{}`) when CNNSERVE_API_KEY is not set
                assert operation["security"] == [{"APIKeyHeader": []}, {"HTTPBearer": []}, {}], (method, path)
                assert responses["401"]["headers"]["WWW-Authenticate"], (method, path)
            for status, response in responses.items():
                if status != "200":
                    assert response["content"]["application/json"]["schema"] == error, (method, path, status)
    assert "HTTPValidationError" not in str(spec), "422s have the one error shape too"
    infer = spec["paths"]["/v2/models/{name}/infer"]["post"]["responses"]
    assert {"413", "415", "422", "500", "503"} <= set(infer) and "Retry-After" in infer["503"]["headers"]


# Every status each new route can answer (401: the API key), as its OpenAPI entry must document it.
DOCUMENTED_ERRORS = {
    ("/models/{name}/summary", "get"): {401, 404, 422, 503},
    ("/models/{name}/samples", "get"): {401, 404, 422, 503},
    ("/models/{name}/samples/{file}", "get"): {401, 404, 422, 503},
    ("/models/{name}/preprocess", "post"): {401, 404, 413, 415, 422, 503},
    ("/zoo/{arch}", "get"): {401, 404, 422},
    ("/zoo/{arch}/summary", "get"): {401, 404, 422},
}


@pytest.mark.parametrize(("path", "method"), DOCUMENTED_ERRORS)
def test_the_new_routes_document_their_errors(client: httpx.Client, path: str, method: str) -> None:
    operation = client.get("/openapi.json").json()["paths"][path][method]
    documented = {int(status) for status in operation["responses"] if status != "200"}
    assert DOCUMENTED_ERRORS[path, method] - {401} <= documented, documented
    assert operation["security"], "behind the API key"
    for status in documented - {422}:
        schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (status, schema)
    assert "200" in operation["responses"]


def test_every_error_code_is_documented() -> None:
    from service.core import errors

    docs = (SERVICE.parent / "docs" / "service.md").read_text()
    codes = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.ServiceError) and cls is not errors.ServiceError
    }
    assert {"sample_not_found", "sample_unavailable", "architecture_not_found"} <= codes
    assert sorted(code for code in codes if f"`{code}`" not in docs) == []


def test_service_never_imports_torch() -> None:
    pattern = re.compile(r"^\s*(import torch|from torch)", re.MULTILINE)
    offenders = [str(p) for p in SERVICE.rglob("*.py") if pattern.search(p.read_text())]
    assert not offenders
    code = (
        "import sys, service.app, service.__main__; service.app.create_app(); "
        "assert 'torch' not in sys.modules, 'torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=SERVICE.parent, timeout=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_python_m_service_serves(repository: Path, grey_model: str) -> None:
    port = _free_port()
    env = {**os.environ, "CNNSERVE_VARIANTS": "fp32", "CNNSERVE_POLL_INTERVAL_S": "0", "CNNSERVE_INTRA_OP_THREADS": "1"}
    args = [
        sys.executable,
        "-m",
        "service",
        "--repository",
        str(repository),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(args, cwd=SERVICE.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (
                proc.stdout.read().decode() if proc.stdout else ""
            )
            time.sleep(0.1)
        models = httpx.get(f"http://127.0.0.1:{port}/models").json()["models"]
        assert grey_model in {m["name"] for m in models}
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0].decode()
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught
    assert proc.returncode in (0, -15) and "Application shutdown complete" in output, output
    assert "execution providers: CPUExecutionProvider" in output
