"""The Open Inference Protocol over gRPC, with stock clients: ``tritonclient.grpc`` (sync, asyncio and
streaming), the bare protocol stubs (typed contents, as a client generated from the ``.proto`` sends),
``grpc.health.v1`` as Kubernetes' gRPC probe asks it, and KServe's ``InferenceGRPCClient`` (in an
environment of its own: it needs another protobuf, tests/service/kserve_client.py).

Every answer is compared with a bare ONNX Runtime session of the same file (<= 1e-5) and with the
HTTP side's answer for the same input; every error case has its gRPC status code.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
import tritonclient.grpc.aio as triton_aio
import tritonclient.http as triton_http
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from .helpers import direct
from .live import LiveServer, free_port, make_settings
from .test_workers import Group

ROOT = Path(__file__).resolve().parents[2]
KSERVE_PYTHON = ROOT / ".venv-kserve" / "bin" / "python"
INFER = "/inference.GRPCInferenceService/ModelInfer"


def _tensor(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _input(x: np.ndarray) -> triton.InferInput:
    tensor = triton.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    return tensor


@pytest.fixture(scope="module")
def live(repository: Path) -> Iterator[LiveServer]:
    server = LiveServer(make_settings(repository, grpc_port=free_port())).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(live: LiveServer) -> Iterator[triton.InferenceServerClient]:
    c = triton.InferenceServerClient(live.grpc_target)
    yield c
    c.close()


def _code(call) -> grpc.StatusCode:
    with pytest.raises(InferenceServerException) as info:
        call()
    return info.value.status()


# --- metadata, health --------------------------------------------------------------------------


def test_server_and_model_metadata_match_http(live: LiveServer, client, grey_model: str) -> None:
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(grey_model)
    http = triton_http.InferenceServerClient(live.url.removeprefix("http://"))
    assert client.get_server_metadata(as_json=True)["extensions"] == http.get_server_metadata()["extensions"]
    over_http = json_format.ParseDict(http.get_model_metadata(grey_model), service_pb2.ModelMetadataResponse())
    assert client.get_model_metadata(grey_model) == over_http
    config = client.get_model_config(grey_model, as_json=True)["config"]
    http_config = http.get_model_config(grey_model)
    assert config["max_batch_size"] == http_config["max_batch_size"] and config["platform"] == "onnxruntime_onnx"
    assert [t["name"] for t in config["output"]] == [t["name"] for t in http_config["output"]]
    index = client.get_model_repository_index(as_json=True)["models"]
    assert {m["name"]: m["state"] for m in index} == {m["name"]: m["state"] for m in http.get_model_repository_index()}
    http.close()


def test_health_service_is_what_a_kubernetes_grpc_probe_asks(live: LiveServer) -> None:
    with grpc.insecure_channel(live.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        serving = health_pb2.HealthCheckResponse.SERVING
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == serving
        named = health_pb2.HealthCheckRequest(service="inference.GRPCInferenceService")
        assert health.Check(named, timeout=5).status == serving
        with pytest.raises(grpc.RpcError) as info:
            health.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=5)
        assert next(watch).status == serving
        watch.cancel()


# --- inference ---------------------------------------------------------------------------------


def test_infer_raw_contents_equals_onnx_runtime_and_http(
    live: LiveServer, client, repository: Path, grey_model: str, cards
) -> None:
    x = _tensor((3, *cards[grey_model].input.shape), seed=1)
    result = client.infer(grey_model, [_input(x)], request_id="r-1")
    want = direct(repository, grey_model, x)
    for name in ("logits", "probabilities"):
        np.testing.assert_allclose(result.as_numpy(name), want[name], rtol=1e-5, atol=1e-5)
    response = result.get_response()
    assert response.id == "r-1" and response.model_version == str(cards[grey_model].latest_version)
    http = triton_http.InferenceServerClient(live.url.removeprefix("http://"))
    tensor = triton_http.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    over_http = http.infer(grey_model, [tensor]).as_numpy("probabilities")
    np.testing.assert_array_equal(result.as_numpy("probabilities"), over_http)
    http.close()


def test_classification_and_variant_parameters(client, repository: Path, grey_model: str, cards) -> None:
    x = _tensor((2, *cards[grey_model].input.shape), seed=2)
    wanted = [triton.InferRequestedOutput("probabilities", class_count=3)]
    top = client.infer(grey_model, [_input(x)], outputs=wanted).as_numpy("probabilities")
    probabilities = direct(repository, grey_model, x)["probabilities"]
    assert top.shape == (2, 3)
    for row, scores in zip(top, probabilities, strict=True):
        indices = [int(entry.decode().split(":")[1]) for entry in row]
        assert scores[indices[0]] >= scores.max() - 1e-6 and indices == sorted(indices, key=lambda i: -scores[i])
    int8 = client.infer(grey_model, [_input(x)], parameters={"variant": "int8"}).as_numpy("probabilities")
    np.testing.assert_allclose(int8, direct(repository, grey_model, x, precision="int8")["probabilities"], atol=1e-5)
    assert _code(lambda: client.infer(grey_model, [_input(x)], parameters={"variant": "fp64"})) == (
        "StatusCode.INVALID_ARGUMENT"
    )


def test_typed_contents_in_and_out_with_the_bare_protocol_stubs(
    live: LiveServer, repository: Path, grey_model: str, cards
) -> None:
    """What a client generated from the protocol's .proto sends: fp32_contents, and binary_data false back."""
    x = _tensor((1, *cards[grey_model].input.shape), seed=3)
    request = service_pb2.ModelInferRequest(model_name=grey_model, id="typed")
    tensor = request.inputs.add(name="input", datatype="FP32", shape=x.shape)
    tensor.contents.fp32_contents.extend(x.ravel().tolist())
    output = request.outputs.add(name="probabilities")
    output.parameters["binary_data"].bool_param = False
    with grpc.insecure_channel(live.grpc_target) as channel:
        response = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    assert not response.raw_output_contents and response.id == "typed"
    (out,) = response.outputs
    got = np.array(out.contents.fp32_contents, np.float32).reshape(out.shape)
    np.testing.assert_allclose(got, direct(repository, grey_model, x)["probabilities"], rtol=1e-5, atol=1e-6)


def test_asyncio_client(live: LiveServer, repository: Path, grey_model: str, cards) -> None:
    inputs = [_tensor((1, *cards[grey_model].input.shape), seed=10 + i) for i in range(8)]

    async def run() -> list[np.ndarray]:
        async with triton_aio.InferenceServerClient(live.grpc_target) as c:
            assert await c.is_server_ready()
            results = await asyncio.gather(*(c.infer(grey_model, [_input(x)]) for x in inputs))
        return [r.as_numpy("probabilities") for r in results]

    for x, got in zip(inputs, asyncio.run(run()), strict=True):
        np.testing.assert_allclose(got, direct(repository, grey_model, x)["probabilities"], rtol=1e-5, atol=1e-6)


def test_stream_answers_every_request_and_errors_without_ending(
    live: LiveServer, repository: Path, grey_model: str, cards
) -> None:
    inputs = {f"s-{i}": _tensor((1, *cards[grey_model].input.shape), seed=20 + i) for i in range(6)}
    answers: dict[str, np.ndarray] = {}
    errors: list[str] = []
    done = threading.Event()

    def callback(result, error) -> None:
        if error is not None:
            errors.append(error.message())
        else:
            answers[result.get_response().id] = result.as_numpy("probabilities")
        if len(answers) + len(errors) == len(inputs) + 1:
            done.set()

    c = triton.InferenceServerClient(live.grpc_target)
    c.start_stream(callback)
    for request_id, x in inputs.items():
        c.async_stream_infer(grey_model, [_input(x)], request_id=request_id)
    c.async_stream_infer("no-such-model", [_input(inputs["s-0"])], request_id="bad")
    assert done.wait(30), (answers.keys(), errors)
    c.stop_stream()
    c.close()
    assert len(errors) == 1 and "no-such-model" in errors[0]
    for request_id, x in inputs.items():
        np.testing.assert_allclose(answers[request_id], direct(repository, grey_model, x)["probabilities"], atol=1e-6)


# --- errors ------------------------------------------------------------------------------------


def test_errors_are_the_protocols_status_codes(client, grey_model: str, cards) -> None:
    shape = cards[grey_model].input.shape
    good = _tensor((1, *shape), seed=4)
    assert _code(lambda: client.infer("no-such-model", [_input(good)])) == "StatusCode.NOT_FOUND"
    assert _code(lambda: client.infer(grey_model, [_input(good)], model_version="99")) == "StatusCode.NOT_FOUND"
    assert _code(lambda: client.get_model_metadata("no-such-model")) == "StatusCode.NOT_FOUND"
    wrong_shape = _tensor((1, 3, 8, 8), seed=5)
    assert _code(lambda: client.infer(grey_model, [_input(wrong_shape)])) == "StatusCode.INVALID_ARGUMENT"
    nan = good.copy()
    nan[0, 0, 0, 0] = np.nan
    assert _code(lambda: client.infer(grey_model, [_input(nan)])) == "StatusCode.INVALID_ARGUMENT"
    ints = triton.InferInput("input", [1, *shape[1:]], "INT32")
    ints.set_data_from_numpy(np.zeros((1, *shape[1:]), np.int32))
    assert _code(lambda: client.infer(grey_model, [ints])) == "StatusCode.INVALID_ARGUMENT"
    wanted = [triton.InferRequestedOutput("features")]
    assert _code(lambda: client.infer(grey_model, [_input(good)], outputs=wanted)) == "StatusCode.INVALID_ARGUMENT"


def test_message_over_the_size_limit_is_resource_exhausted(repository: Path, start_server, grey_model, cards) -> None:
    live = start_server(make_settings(repository, grpc_port=free_port(), max_body_bytes=64 * 1024))
    c = triton.InferenceServerClient(live.grpc_target)
    small = _tensor((1, *cards[grey_model].input.shape), seed=6)
    assert c.infer(grey_model, [_input(small)]).as_numpy("probabilities").shape[0] == 1
    big = np.repeat(small, 32, axis=0)  # 128 KiB of tensor
    assert _code(lambda: c.infer(grey_model, [_input(big)])) == "StatusCode.RESOURCE_EXHAUSTED"
    assert c.infer(grey_model, [_input(small)]).as_numpy("probabilities").shape[0] == 1  # nothing lost
    c.close()


def test_api_key_from_metadata(repository: Path, start_server, grey_model, cards) -> None:
    live = start_server(make_settings(repository, grpc_port=free_port(), api_key="s3cret"))
    c = triton.InferenceServerClient(live.grpc_target)
    x = _input(_tensor((1, *cards[grey_model].input.shape), seed=7))
    assert c.is_server_live() and c.is_server_ready()  # probes need no key, as over HTTP
    assert _code(lambda: c.infer(grey_model, [x])) == "StatusCode.UNAUTHENTICATED"
    assert _code(lambda: c.infer(grey_model, [x], headers={"x-api-key": "wrong"})) == "StatusCode.UNAUTHENTICATED"
    assert _code(lambda: c.get_model_metadata(grey_model)) == "StatusCode.UNAUTHENTICATED"
    for headers in ({"x-api-key": "s3cret"}, {"authorization": "Bearer s3cret"}):
        assert c.infer(grey_model, [x], headers=headers).as_numpy("probabilities").shape == (1, 10)
    c.close()


def test_full_queue_is_unavailable_with_a_retry_hint(repository: Path, start_server, grey_model: str, cards) -> None:
    live = start_server(
        make_settings(
            repository, grpc_port=free_port(), max_queue_size=1, max_queue_delay_microseconds=200_000, variants=["fp32"]
        )
    )
    request = service_pb2.ModelInferRequest(model_name=grey_model)
    x = np.zeros((1, *cards[grey_model].input.shape), np.float32)
    request.inputs.add(name="input", datatype="FP32", shape=x.shape)
    request.raw_input_contents.append(x.tobytes())

    def call(_: int) -> grpc.RpcError | None:
        with grpc.insecure_channel(live.grpc_target) as channel:
            try:
                service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
            except grpc.RpcError as exc:
                return exc
        return None

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(call, range(4)))
    refused = [e for e in outcomes if e is not None]
    assert None in outcomes and refused, outcomes
    assert {e.code() for e in refused} == {grpc.StatusCode.UNAVAILABLE}
    trailers = dict(refused[0].trailing_metadata())
    assert trailers["retry-after"] == "1" and trailers["grpc-retry-pushback-ms"] == "1000"
    assert trailers["cnnserve-error-code"] == "queue_full"


# --- one data plane ----------------------------------------------------------------------------


def test_grpc_and_http_requests_share_a_batch(repository: Path, start_server, grey_model: str, cards) -> None:
    """With a long queue delay and batches of two, an HTTP and a gRPC request sent together make one batch."""
    live = start_server(
        make_settings(
            repository,
            grpc_port=free_port(),
            max_batch_size=2,
            max_queue_delay_microseconds=2_000_000,
            variants=["fp32"],
        )
    )
    shape = cards[grey_model].input.shape
    x_http, x_grpc = _tensor((1, *shape), seed=30), _tensor((1, *shape), seed=31)
    c = triton.InferenceServerClient(live.grpc_target)
    with ThreadPoolExecutor(2) as pool:
        over_grpc = pool.submit(lambda: c.infer(grey_model, [_input(x_grpc)]).as_numpy("probabilities"))
        over_http = pool.submit(
            lambda: httpx.post(
                f"{live.url}/models/{grey_model}/predict", json={"tensor": x_http.tolist()}, timeout=30
            ).json()
        )
        answer = over_http.result()
        np.testing.assert_allclose(
            over_grpc.result(), direct(repository, grey_model, x_grpc)["probabilities"], rtol=1e-5, atol=1e-6
        )
    assert answer["timings"]["batch_size"] == 2, answer  # the HTTP request's batch held the gRPC one
    c.close()


def test_mixed_http_and_grpc_load_answers_are_all_right(live: LiveServer, repository: Path, grey_model, cards) -> None:
    """48 distinct inputs, half over each protocol at once: each answer is its own input's."""
    shape = cards[grey_model].input.shape
    inputs = [_tensor((1, *shape), seed=100 + i) for i in range(48)]
    grpc_client = triton.InferenceServerClient(live.grpc_target)

    def call(i: int) -> np.ndarray:
        x = inputs[i]
        if i % 2:
            return grpc_client.infer(grey_model, [_input(x)]).as_numpy("probabilities")
        http = triton_http.InferenceServerClient(live.url.removeprefix("http://"))
        tensor = triton_http.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        try:
            return http.infer(grey_model, [tensor]).as_numpy("probabilities")
        finally:
            http.close()

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(call, range(len(inputs))))
    for x, got in zip(inputs, answers, strict=True):
        np.testing.assert_allclose(got, direct(repository, grey_model, x)["probabilities"], rtol=1e-5, atol=1e-6)
    grpc_client.close()


def test_grpc_requests_are_counted_with_their_protocol(live: LiveServer, client, grey_model: str, cards) -> None:
    x = _input(_tensor((1, *cards[grey_model].input.shape), seed=8))
    client.infer(grey_model, [x])
    with pytest.raises(InferenceServerException):
        client.infer("no-such-model", [x])
    text = httpx.get(f"{live.url}/metrics", timeout=10).text
    ok = f'cnnserve_requests_total{{model="{grey_model}",protocol="grpc",route="{INFER}",status="200"}}'
    missing = f'cnnserve_requests_total{{model="",protocol="grpc",route="{INFER}",status="404"}}'
    assert ok in text and missing in text, [line for line in text.splitlines() if 'protocol="grpc"' in line]


# --- KServe's client ---------------------------------------------------------------------------


def test_kserve_grpc_client(live: LiveServer, repository: Path, grey_model: str, cards) -> None:
    """KServe's InferenceGRPCClient (its own .proto's stubs), run in .venv-kserve (make test sets it up)."""
    assert KSERVE_PYTHON.exists(), "make test creates .venv-kserve (KServe's client needs protobuf < 7 of its own)"
    x = _tensor((2, *cards[grey_model].input.shape), seed=9)
    out = subprocess.run(
        [str(KSERVE_PYTHON), str(Path(__file__).with_name("kserve_client.py")), live.grpc_target, grey_model],
        input=json.dumps(x.tolist()),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    answer = json.loads(out.stdout)
    assert answer["live"] and answer["ready"] and answer["model_ready"]
    got = np.array(answer["probabilities"], np.float32)
    np.testing.assert_allclose(got, direct(repository, grey_model, x)["probabilities"], rtol=1e-5, atol=1e-6)


# --- every worker ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.xdist_group("service-workers")
def test_every_worker_serves_grpc_and_drains_it_on_sigterm(tiny_repository: Path, tmp_path: Path) -> None:
    """Two workers on one gRPC port; a SIGTERM while requests wait in the batch queue answers them all."""
    port = free_port()
    group = Group(
        tiny_repository,
        tmp_path / "service.log",
        grpc_port=port,
        max_batch_size=64,
        max_queue_delay_microseconds=1_500_000,
    )
    try:
        group.wait(group.ready, what="ready")
        for worker in (0, 1):
            assert group.lines(f"worker {worker}", f"over gRPC on 127.0.0.1:{port}"), group.log()[-3000:]
        target = f"127.0.0.1:{port}"
        inputs = [_tensor((1, 1, 32, 32), seed=200 + i) for i in range(12)]

        def call(x: np.ndarray) -> np.ndarray:
            c = triton.InferenceServerClient(target)  # a connection of its own: the kernel picks a worker
            try:
                return c.infer("lenet5", [_input(x)], client_timeout=60).as_numpy("probabilities")
            finally:
                c.close()

        with ThreadPoolExecutor(len(inputs)) as pool:
            pending = [pool.submit(call, x) for x in inputs]
            time.sleep(0.5)  # every request is in a queue that waits 1.5 s for company
            group.process.send_signal(signal.SIGTERM)
            answers = [p.result() for p in pending]
        for x, got in zip(inputs, answers, strict=True):
            np.testing.assert_allclose(got, direct(tiny_repository, "lenet5", x)["probabilities"], rtol=1e-5, atol=1e-6)
        assert group.process.wait(60) == 0
    finally:
        if group.process.poll() is None:
            group.process.kill()
            group.process.wait(30)
