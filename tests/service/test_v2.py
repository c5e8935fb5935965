"""The Open Inference Protocol v2, through the official ``tritonclient.http`` client."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from .helpers import direct

pytestmark = pytest.mark.xdist_group("service")


@pytest.fixture(scope="module")
def tc(server) -> triton.InferenceServerClient:
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    yield client
    client.close()


def _inputs(x: np.ndarray, binary: bool, name: str = "input", datatype: str = "FP32") -> list[triton.InferInput]:
    tensor = triton.InferInput(name, list(x.shape), datatype)
    tensor.set_data_from_numpy(x, binary_data=binary)
    return [tensor]


def _batch(cards, model: str, n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *cards[model].input.shape)).astype(np.float32)


def test_server_endpoints(tc: triton.InferenceServerClient, cards) -> None:
    assert tc.is_server_live() and tc.is_server_ready()
    meta = tc.get_server_metadata()
    assert meta["name"] == "cnnserve" and "binary_tensor_data" in meta["extensions"]
    index = tc.get_model_repository_index()
    assert {m["name"] for m in index} == set(cards) and {m["state"] for m in index} == {"READY"}


def test_model_endpoints(tc: triton.InferenceServerClient, cards, grey_model: str) -> None:
    card = cards[grey_model]
    version = str(card.latest_version)
    assert tc.is_model_ready(grey_model) and tc.is_model_ready(grey_model, version)
    assert not tc.is_model_ready("nope") and not tc.is_model_ready(grey_model, "99")
    meta = tc.get_model_metadata(grey_model)
    assert meta["name"] == grey_model and meta["versions"] == [version] and meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, *card.input.shape]}]
    assert [o["name"] for o in meta["outputs"]] == ["logits", "probabilities"]
    assert tc.get_model_metadata(grey_model, version)["versions"] == [version]
    config = tc.get_model_config(grey_model)
    assert config["max_batch_size"] == card.batching.max_batch_size
    assert config["input"][0]["dims"] == card.input.shape


def test_json_binary_predict_and_direct_agree(
    tc: triton.InferenceServerClient, client: httpx.Client, repository: Path, cards, rgb_model: str
) -> None:
    x = _batch(cards, rgb_model)
    want = direct(repository, rgb_model, x)
    outputs = [
        triton.InferRequestedOutput("logits", binary_data=False),
        triton.InferRequestedOutput("probabilities", binary_data=False),
    ]
    as_json = tc.infer(rgb_model, _inputs(x, binary=False), outputs=outputs)
    as_binary = tc.infer(rgb_model, _inputs(x, binary=True))  # no outputs named: all, in binary
    for name in ("logits", "probabilities"):
        np.testing.assert_array_equal(as_json.as_numpy(name), as_binary.as_numpy(name))
        np.testing.assert_allclose(as_binary.as_numpy(name), want[name], rtol=1e-5, atol=1e-6)
    r = client.post(f"/models/{rgb_model}/predict", json={"tensor": x.tolist(), "probabilities": True})
    assert r.status_code == 200, r.text
    from_predict = np.array([p["probabilities"] for p in r.json()["predictions"]], dtype=np.float32)
    np.testing.assert_array_equal(from_predict, as_binary.as_numpy("probabilities"))
    assert as_binary.get_response()["model_version"] == str(cards[rgb_model].latest_version)


def test_versioned_infer_with_request_id_and_gzip(
    tc: triton.InferenceServerClient, repository: Path, cards, grey_model: str
) -> None:
    x = _batch(cards, grey_model, n=2, seed=1)
    version = str(cards[grey_model].latest_version)
    result = tc.infer(
        grey_model,
        _inputs(x, binary=True),
        model_version=version,
        request_id="abc-1",
        outputs=[triton.InferRequestedOutput("probabilities")],
        request_compression_algorithm="gzip",
    )
    assert result.get_response()["id"] == "abc-1"
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), direct(repository, grey_model, x)["probabilities"], rtol=1e-5, atol=1e-6
    )
    assert result.as_numpy("logits") is None  # not asked for


def test_classification_extension(tc: triton.InferenceServerClient, cards, grey_model: str) -> None:
    x = _batch(cards, grey_model, n=2, seed=2)
    full = tc.infer(grey_model, _inputs(x, binary=True)).as_numpy("probabilities")
    for binary in (True, False):
        out = triton.InferRequestedOutput("probabilities", binary_data=binary, class_count=3)
        classes = tc.infer(grey_model, _inputs(x, binary=True), outputs=[out]).as_numpy("probabilities")
        assert classes.shape == (2, 3)
        for row, probs in zip(classes, full, strict=True):
            entries = [(e.decode() if isinstance(e, bytes) else e).split(":") for e in row]
            assert [int(e[1]) for e in entries] == list(np.argsort(-probs, kind="stable")[:3])
            assert [e[2] for e in entries] == [cards[grey_model].labels[int(e[1])] for e in entries]
            np.testing.assert_allclose([float(e[0]) for e in entries], np.sort(probs)[::-1][:3], atol=1e-6)


def test_variant_parameter(tc: triton.InferenceServerClient, repository: Path, cards, grey_model: str) -> None:
    x = _batch(cards, grey_model, n=1, seed=3)
    result = tc.infer(grey_model, _inputs(x, binary=True), parameters={"variant": "int8"})
    want = direct(repository, grey_model, x, precision="int8")["probabilities"]
    np.testing.assert_allclose(result.as_numpy("probabilities"), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("shape", "datatype", "name", "status", "needle"),
    [
        ("wrong-hw", "FP32", "input", 422, "-1 (batch)"),
        ("ok", "FP64", "input", 422, "FP32"),
        ("ok", "INT32", "input", 422, "FP32"),
        ("ok", "FP32", "pixels", 422, "'input'"),
        ("no-batch", "FP32", "input", 422, "must be FP32"),
    ],
)
def test_wrong_tensors_are_422_naming_the_expected_one(
    tc: triton.InferenceServerClient,
    cards,
    grey_model: str,
    shape: str,
    datatype: str,
    name: str,
    status: int,
    needle: str,
) -> None:
    c, h, w = cards[grey_model].input.shape
    dims = {"wrong-hw": (1, c, h, w + 3), "ok": (1, c, h, w), "no-batch": (c, h, w)}[shape]
    dtype = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32}[datatype]
    with pytest.raises(InferenceServerException) as info:
        tc.infer(grey_model, _inputs(np.zeros(dims, dtype), binary=True, name=name, datatype=datatype))
    assert info.value.status() == str(status)
    assert needle in info.value.message()


def test_unknown_model_version_and_output(tc: triton.InferenceServerClient, cards, grey_model: str) -> None:
    x = _batch(cards, grey_model, n=1)
    for call, status in [
        (lambda: tc.infer("nope", _inputs(x, True)), "404"),
        (lambda: tc.infer(grey_model, _inputs(x, True), model_version="99"), "404"),
        (lambda: tc.infer(grey_model, _inputs(x, True), model_version="latest"), "404"),
        (lambda: tc.infer(grey_model, _inputs(x, True), outputs=[triton.InferRequestedOutput("features")]), "422"),
        (lambda: tc.get_model_metadata("nope"), "404"),
    ]:
        with pytest.raises(InferenceServerException) as info:
            call()
        assert info.value.status() == status, info.value.message()


def _raw(
    client: httpx.Client, model: str, header: dict, binary: bytes = b"", length: int | None = None
) -> httpx.Response:
    head = json.dumps(header).encode()
    headers = (
        {"Inference-Header-Content-Length": str(len(head) if length is None else length)} if binary or length else {}
    )
    return client.post(f"/v2/models/{model}/infer", content=head + binary, headers=headers)


def test_malformed_binary_requests(client: httpx.Client, cards, grey_model: str) -> None:
    shape = [1, *cards[grey_model].input.shape]
    good = np.zeros(shape, np.float32).tobytes()

    def header(size: int | None = len(good), **extra) -> dict:
        params = {"binary_data_size": size} if size is not None else {}
        return {"inputs": [{"name": "input", "shape": shape, "datatype": "FP32", "parameters": params, **extra}]}

    assert _raw(client, grey_model, header(), good).status_code == 200
    cases = [
        _raw(client, grey_model, header(), good[:-4]),  # too few bytes
        _raw(client, grey_model, header(), good + b"\0" * 8),  # bytes left over
        _raw(client, grey_model, header(len(good) - 4), good[:-4]),  # size does not match the shape
        _raw(client, grey_model, header(-1), good),
        _raw(client, grey_model, header(), good, length=10**9),  # header length beyond the body
        _raw(client, grey_model, header(None)),  # neither data nor binary
        _raw(client, grey_model, header(None, data=[1.0, 2.0])),  # too few values
        _raw(client, grey_model, header(None, data=["a"] * 4)),
        _raw(client, grey_model, {"inputs": []}),
        _raw(client, grey_model, {"inputs": [{"name": "input", "shape": [-1, 2], "datatype": "FP32", "data": [1.0]}]}),
        _raw(client, grey_model, {"inputs": "x"}),
        _raw(client, grey_model, header(None, datatype="FP8")),
        client.post(f"/v2/models/{grey_model}/infer", content=b"\x00\xff garbage"),
        client.post(f"/v2/models/{grey_model}/infer", content=b"{}", headers={"Inference-Header-Content-Length": "x"}),
        client.post(f"/v2/models/{grey_model}/infer", content=b"not gzip", headers={"Content-Encoding": "gzip"}),
    ]
    for r in cases:
        assert r.status_code in (415, 422), r.text
        assert set(r.json()) >= {"error", "code", "status"}
    r = client.post(f"/v2/models/{grey_model}/infer", content=b"x", headers={"Content-Encoding": "br"})
    assert r.status_code == 415


def test_health_endpoints_over_plain_http(client: httpx.Client) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}


@pytest.mark.parametrize("version", ["²", "١", "9" * 5000], ids=["superscript-two", "arabic-one", "5000-digits"])
def test_odd_versions_are_404(client: httpx.Client, grey_model: str, version: str) -> None:
    # Found probing what the fuzzer sends: str.isdigit() accepts these, int() refuses or misreads them (500s).
    for path in (f"/v2/models/{grey_model}/versions/{version}", f"/v2/models/{grey_model}/versions/{version}/ready"):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["code"] == "version_not_found", r.text


@pytest.mark.parametrize(
    "shape", [[1] * 65, [1] * 33, [0, 10**30], [10**30, 0]], ids=["65-dims", "33-dims", "huge-dim", "huge-first"]
)
def test_shapes_numpy_cannot_make_are_422(client: httpx.Client, grey_model: str, shape: list[int]) -> None:
    # Found probing what the fuzzer sends: the reshape raised (500) for either kind of data.
    size = 4 if 0 not in shape else 0
    json_input = {"name": "input", "shape": shape, "datatype": "FP32", "data": [0.0] * (size // 4)}
    binary_input = {"name": "input", "shape": shape, "datatype": "FP32", "parameters": {"binary_data_size": size}}
    binary_header = {"inputs": [binary_input]}
    for r in (
        _raw(client, grey_model, {"inputs": [json_input]}),
        _raw(client, grey_model, binary_header, b"\0" * size, length=len(json.dumps(binary_header).encode())),
    ):
        assert r.status_code == 422 and "is too large" in r.json()["error"], r.text
    assert client.get(f"/v2/models/{grey_model}/ready").status_code == 200
