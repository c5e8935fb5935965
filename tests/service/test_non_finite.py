"""NaN and ±Inf, in and out (issue 12, point 2).

A tensor holding NaN or ±Inf (JSON numbers, or v2 binary data) is a 422 naming the input and how
many values are not finite; strings are never tensor data. A model that computes NaN or ±Inf from
finite inputs answers those requests 500 ``non_finite_output`` naming model, version, variant and
cause, counts them in ``/metrics``, and still answers the other requests of the same batch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from .live import LiveServer, make_settings
from .repo_builder import Overflowing, write_model

pytestmark = pytest.mark.xdist_group("service")

BIG = 1e9  # a finite float32 that the Overflowing model turns into ±Inf logits and NaN probabilities


def _zeros(cards, model: str, n: int = 1) -> np.ndarray:
    return np.zeros((n, *cards[model].input.shape), np.float32)


def _post_json(client: httpx.Client, path: str, body: dict) -> httpx.Response:
    # json.dumps writes NaN, Infinity and -Infinity tokens, as many clients' encoders do.
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


def _error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["status"], body["code"]) == (status, code) and body["error"], body
    return body


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e39], ids=["nan", "inf", "-inf", "beyond-fp32"])
def test_a_predict_tensor_with_non_finite_values_is_422(client: httpx.Client, cards, grey_model: str, value) -> None:
    x = _zeros(cards, grey_model).tolist()
    x[0][0][0][:3] = [value] * 3
    body = _error(_post_json(client, f"/models/{grey_model}/predict", {"tensor": x}), 422, "invalid_input")
    assert "input 'input'" in body["error"] and "3 value(s) that are not finite" in body["error"]
    assert body["details"] == {"input": "input", "non_finite": 3, "values": int(np.prod(np.shape(x)))}
    assert client.post(f"/models/{grey_model}/predict", json={"tensor": _zeros(cards, grey_model).tolist()}).is_success


def test_v2_json_data_with_non_finite_numbers_is_422(client: httpx.Client, cards, grey_model: str) -> None:
    x = _zeros(cards, grey_model)
    data: list[float] = x.ravel().tolist()
    data[:2] = [math.nan, -math.inf]
    header = {"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": data}]}
    body = _error(_post_json(client, f"/v2/models/{grey_model}/infer", header), 422, "invalid_input")
    assert "input 'input'" in body["error"] and body["details"]["non_finite"] == 2


@pytest.mark.parametrize("strings", [["NaN"], ["1.5"], ["0", 0.0]], ids=["nan", "number", "mixed"])
def test_strings_are_never_tensor_data(client: httpx.Client, cards, grey_model: str, strings: list) -> None:
    # numpy would parse "NaN" and "1.5" as floats: a client sending strings has a bug worth hearing about.
    x = _zeros(cards, grey_model)
    data = (strings * x.size)[: x.size]
    header = {"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": data}]}
    body = _error(_post_json(client, f"/v2/models/{grey_model}/infer", header), 422, "invalid_input")
    assert "input 'input'" in body["error"] and "are not FP32 values" in body["error"], body
    tensor = np.array(data, dtype=object).reshape(x.shape).tolist()
    body = _error(_post_json(client, f"/models/{grey_model}/predict", {"tensor": tensor}), 422, "invalid_input")
    assert "are not FP32 values" in body["error"], body


def test_v2_binary_data_with_non_finite_values_is_422(server: LiveServer, cards, grey_model: str) -> None:
    x = _zeros(cards, grey_model, n=2)
    x.flat[[5, 7, x.size - 1]] = [np.nan, np.inf, -np.inf]
    tensor = triton.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    try:
        with pytest.raises(InferenceServerException) as info:
            client.infer(grey_model, [tensor])
        assert info.value.status() == "422"
        assert "input 'input'" in info.value.message() and "3 value(s) that are not finite" in info.value.message()
        tensor.set_data_from_numpy(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0), binary_data=True)
        assert client.infer(grey_model, [tensor]).as_numpy("probabilities").shape == (2, 10)
    finally:
        client.close()


# ----------------------------------------------------------------------------- non-finite outputs


@pytest.fixture(scope="module")
def overflowing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose lenet5 is :class:`Overflowing` (fp32, int8 and fp16 files), in batches of 2 at most."""
    root = tmp_path_factory.mktemp("overflowing") / "model_repository"
    # A full batch runs at once; the long delay makes two concurrent requests share one.
    write_model(root, "lenet5", {1: 0}, max_batch_size=2, delay_us=5_000_000, net=Overflowing())
    return root


@pytest.fixture
def overflow_server(overflowing: Path, start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server(make_settings(overflowing, variants=["fp32", "fp16"]))


def _tensor(*rows: float) -> list:
    """One (1, 32, 32) input per row value, its first pixel that value."""
    x = np.zeros((len(rows), 1, 32, 32), np.float32)
    x[:, 0, 0, 0] = rows
    return x.tolist()


def test_non_finite_outputs_are_500_for_their_request_alone(overflow_server: LiveServer) -> None:
    def predict(rows: tuple[float, ...]) -> httpx.Response:
        with overflow_server.client() as c:
            return c.post("/models/lenet5/predict", json={"tensor": _tensor(*rows)})

    with ThreadPoolExecutor(2) as pool:  # one input each: they fill one batch of 2 together
        bad, good = pool.map(predict, [(BIG,), (1.0,)])
    body = _error(bad, 500, "non_finite_output")
    assert body["details"] == {
        "model": "lenet5",
        "version": 1,
        "variant": "fp32",
        "outputs": ["logits", "probabilities"],
        "inputs": [0],
    }
    assert "'lenet5' version 1 variant fp32" in body["error"] and "overflowed" in body["error"]
    assert good.status_code == 200, good.text
    assert good.json()["timings"]["batch_size"] == 2, "the two requests shared a batch"
    assert all(math.isfinite(c["probability"]) for c in good.json()["predictions"][0]["top_k"])

    with overflow_server.client() as c:
        metrics = c.get("/metrics").text
    assert 'cnnserve_non_finite_outputs_total{model="lenet5",variant="fp32"} 1.0' in metrics
    labels = 'model="lenet5",protocol="http",route="/models/{name}/predict",status="500"'
    assert f"cnnserve_request_errors_total{{{labels}}} 1.0" in metrics


def test_a_float16_overflow_names_its_variant_and_cause_on_both_protocols(overflow_server: LiveServer) -> None:
    with overflow_server.client() as c:
        r = c.post("/models/lenet5/predict", params={"variant": "fp16"}, json={"tensor": _tensor(1.0, BIG)})
        body = _error(r, 500, "non_finite_output")
        assert (body["details"]["variant"], body["details"]["inputs"]) == ("fp16", [1])
        assert "1 of 2 finite input(s)" in body["error"] and "float16 overflows" in body["error"]
        assert "variant fp32" in body["error"], "the error says what to do"
        metrics = c.get("/metrics").text
    assert 'cnnserve_non_finite_outputs_total{model="lenet5",variant="fp16"} 1.0' in metrics

    x = np.array(_tensor(BIG, 1.0), np.float32)
    tensor = triton.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    client = triton.InferenceServerClient(overflow_server.url.removeprefix("http://"))
    try:
        with pytest.raises(InferenceServerException) as info:
            client.infer("lenet5", [tensor], parameters={"variant": "fp16"})
        assert info.value.status() == "500" and "float16 overflows" in info.value.message()
        tensor.set_data_from_numpy(np.array(_tensor(1.0, 2.0), np.float32), binary_data=True)
        assert np.isfinite(client.infer("lenet5", [tensor]).as_numpy("probabilities")).all()
    finally:
        client.close()
