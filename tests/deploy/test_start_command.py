"""The containers' start command, run outside Docker (no engine here) against a built repository.

Everything comes from the Dockerfile (tests/deploy/dockerfile.py), not from a copy of it: the
runtime stage's ENTRYPOINT + CMD, its ENV, and the files its COPY instructions put in the
working directory. The process runs the way the image would run it:

* the command and environment of the target, with four substitutions: CNNSERVE_REPOSITORY
  (the test's repository instead of the baked /models), CNNSERVE_PORT and CNNSERVE_GRPC_PORT
  (free ports) and CNNSERVE_HOST (127.0.0.1 rather than every interface of the test machine); PATH finds this
  environment's ``python`` where the image's PATH finds /opt/venv/bin/python;
* in a folder laid out like the image's WORKDIR: only what the stage copies (repository/, service/,
  healthcheck.py, ...), so an import of something the image lacks fails here too;
* with ``torch`` (and the project packages the image does not copy) made unimportable, since
  the runtime images have no torch.

Both runtime targets are run: ``gpu`` (the default) asks for CUDA first and must fall back to
the CPU on this CUDA-less machine; ``cpu`` asks for the CPU. Then the health endpoints, the
image's HEALTHCHECK script, /predict, the v2 protocol over HTTP and gRPC and /metrics are exercised, and SIGTERM
(what ``docker stop`` sends) must stop the server promptly. Not covered: the images' own Python
(3.12), onnxruntime-gpu, CUDA, and the filesystem permissions of the non-root user.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from repository import Repository
from tests.deploy import dockerfile as df

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("deploy-start-command")]

READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0  # docker compose's stop_grace_period in docker-compose.yml
PROJECT_PACKAGES = ("repository", "models", "training", "export", "service")
ABSENT_FROM_IMAGE = ("torch", "torchvision")


@dataclass
class Server:
    target: str
    process: subprocess.Popen
    url: str
    app_dir: Path
    env: dict[str, str]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def image_layout(stages: list[df.Stage], target: df.Stage, root: Path) -> Path:
    """Copy what ``target``'s COPY instructions take from the build context into ``root``,
    mirroring the image's filesystem; return the WORKDIR's counterpart."""
    for copy in df.copies(stages, target):
        if copy.from_stage is not None:
            continue  # the virtual environment and the baked repository: this environment's / the test's own
        destination = root / copy.destination.lstrip("/")
        for source in copy.sources:
            path = df.ROOT / source
            if path.is_dir():
                shutil.copytree(path, destination, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
            else:
                target_path = destination / path.name if copy.destination.endswith("/") else destination
                target_path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target_path)
    workdir = root / df.workdir(stages, target).lstrip("/")
    assert workdir.is_dir(), f"nothing is copied into WORKDIR {df.workdir(stages, target)}"
    return workdir


def blocked_imports(root: Path, app_dir: Path) -> Path:
    """A folder, first on PYTHONPATH, whose packages fail to import: what the image does not have."""
    stubs = root / "absent-from-image"
    for name in ABSENT_FROM_IMAGE + tuple(p for p in PROJECT_PACKAGES if not (app_dir / p).is_dir()):
        (stubs / name).mkdir(parents=True)
        (stubs / name / "__init__.py").write_text(
            f"raise ImportError('{name} is not in the runtime image (tests/deploy/test_start_command.py)')\n"
        )
    return stubs


def container_environment(
    stages: list[df.Stage], target: df.Stage, repository: Path, port: int, stubs: Path
) -> dict[str, str]:
    image_env = df.environment(stages, target)
    assert {"CNNSERVE_REPOSITORY", "CNNSERVE_PORT", "CNNSERVE_GRPC_PORT", "CNNSERVE_HOST"} <= image_env.keys()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("CNNSERVE_") and k not in ("PYTHONPATH", "PYTHONHOME")
    }
    env.update({k: v for k, v in image_env.items() if k != "PATH"})
    env.update(
        CNNSERVE_REPOSITORY=str(repository),
        CNNSERVE_PORT=str(port),
        CNNSERVE_GRPC_PORT=str(free_port()),
        CNNSERVE_HOST="127.0.0.1",
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        PYTHONPATH=str(stubs),
    )
    return env


@pytest.fixture(scope="module", params=["gpu", "cpu"])
def server(
    request: pytest.FixtureRequest, quick_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    stages = df.parse()
    target = df.stage(stages, request.param)
    argv = df.start_command(stages, target)
    assert argv, f"{request.param}: no ENTRYPOINT/CMD"
    root = tmp_path_factory.mktemp(f"image-{request.param}")
    app_dir = image_layout(stages, target, root)
    port = free_port()
    env = container_environment(stages, target, quick_repository, port, blocked_imports(root, app_dir))
    log = root / "server.log"
    names = Repository(quick_repository).names()
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, cwd=app_dir, env=env, stdout=out, stderr=subprocess.STDOUT)
    srv = Server(request.param, process, f"http://127.0.0.1:{port}", app_dir, env, log)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"`{' '.join(argv)}` exited with {process.returncode}:\n{srv.output()}")
            try:
                # Readiness means "a model serves": wait for each model of the repository.
                if httpx.get(f"{srv.url}/v2/health/ready", timeout=2).status_code == 200 and all(
                    httpx.get(f"{srv.url}/v2/models/{name}/ready", timeout=2).status_code == 200 for name in names
                ):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"not ready after {READY_TIMEOUT_S:.0f}s:\n{srv.output()}")
            time.sleep(0.25)
        yield srv
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_health_endpoints(server: Server) -> None:
    for path in ("/v2/health/live", "/healthz", "/v2/health/ready", "/readyz"):
        response = httpx.get(server.url + path, timeout=10)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"


def test_grpc_health_and_inference(server: Server) -> None:
    """The image serves the protocol over gRPC too: the standard health service, and an inference."""
    target = f"127.0.0.1:{server.env['CNNSERVE_GRPC_PORT']}"
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    client = tritonclient.grpc.InferenceServerClient(target)
    x = tritonclient.grpc.InferInput("input", [1, 1, 32, 32], "FP32")
    x.set_data_from_numpy(np.zeros((1, 1, 32, 32), np.float32))
    assert client.infer("lenet5", [x]).as_numpy("probabilities").shape == (1, 10)
    client.close()


def test_image_healthcheck_script(server: Server) -> None:
    stages = df.parse()
    argv = df.exec_form(df.stage(stages, server.target).last("HEALTHCHECK"))
    workdir = df.workdir(stages, df.stage(stages, server.target))
    # Absolute image paths under WORKDIR map into the copied layout.
    local = [str(server.app_dir / Path(a).relative_to(workdir)) if a.startswith(workdir + "/") else a for a in argv]
    ok = subprocess.run(local, cwd=server.app_dir, env=server.env, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    env = dict(server.env, CNNSERVE_PORT=str(free_port()))  # nothing listens there
    down = subprocess.run(local, cwd=server.app_dir, env=env, capture_output=True, text=True, timeout=30)
    assert down.returncode == 1 and "unhealthy" in down.stderr


def test_build_time_repository_check(server: Server) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "repository", "check", server.env["CNNSERVE_REPOSITORY"]],
        cwd=server.app_dir,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "lenet5" in ok.stdout and "resnet18" in ok.stdout


def _png(size: int = 64) -> bytes:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_predict(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/predict",
        params={"model": "resnet18", "top_k": 3},
        content=_png(),
        headers={"Content-Type": "image/png"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    (prediction,) = body["predictions"]
    assert len(prediction["top_k"]) == 3


def test_open_inference_protocol(server: Server) -> None:
    metadata = httpx.get(f"{server.url}/v2/models/lenet5", timeout=10)
    assert metadata.status_code == 200, metadata.text
    (tensor,) = metadata.json()["inputs"]
    shape = [1 if d == -1 else d for d in tensor["shape"]]
    request = {
        "inputs": [
            {
                "name": tensor["name"],
                "shape": shape,
                "datatype": tensor["datatype"],
                "data": [0.0] * int(np.prod(shape)),
            }
        ]
    }
    response = httpx.post(f"{server.url}/v2/models/lenet5/infer", json=request, timeout=60)
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert outputs
    for output in outputs:
        assert output["shape"][0] == 1 and len(output["data"]) == int(np.prod(output["shape"])), output["name"]


def test_triton_guide_client_agrees_with_predict(server: Server, tmp_path: Path) -> None:
    # deploy/triton.md's client, run as written against the service (it speaks the same protocol).
    text = (df.ROOT / "deploy" / "triton.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 1, "deploy/triton.md should hold one python block: the client"
    script, image = tmp_path / "classify.py", tmp_path / "image.png"
    script.write_text(blocks[0])
    image.write_bytes(_png(48))
    env = dict(
        os.environ,
        TRITON_URL=server.url.removeprefix("http://"),
        MODEL="resnet18",
        MODEL_REPOSITORY=server.env["CNNSERVE_REPOSITORY"],
    )
    result = subprocess.run(
        [sys.executable, str(script), str(image)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    first = re.match(rf"{re.escape(str(image))}: (\S+) ([0-9.]+),", result.stdout)
    assert first, result.stdout
    response = httpx.post(
        f"{server.url}/predict",
        params={"model": "resnet18", "top_k": 1, "probabilities": True},
        content=image.read_bytes(),
        headers={"Content-Type": "image/png"},
        timeout=60,
    )
    prediction = response.json()["predictions"][0]
    (best,) = prediction["top_k"]
    labels = Repository(server.env["CNNSERVE_REPOSITORY"]).load_card("resnet18").labels
    label, probability = first[1], float(first[2])
    # The guide preprocesses with its own code: the service's best class, or one tied with it to within
    # that rounding (a quick model's two best classes can be that close), with the same probability.
    assert probability == pytest.approx(best["probability"], abs=1e-4)
    assert prediction["probabilities"][labels.index(label)] >= best["probability"] - 1e-4, (label, best)


def test_torch_is_not_importable_in_the_emulated_image(server: Server) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import torch"],
        cwd=server.app_dir,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "not in the runtime image" in result.stderr


def test_metrics(server: Server) -> None:
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert "cnnserve_requests_total" in response.text


def test_models_run_on_the_best_available_provider(server: Server) -> None:
    # The gpu target asks for CUDA first: without it (as here) the models must still serve, on the CPU.
    import onnxruntime

    available = onnxruntime.get_available_providers()
    expected = next(p for p in server.env["CNNSERVE_PROVIDERS"].split(",") if p in available)
    models = httpx.get(f"{server.url}/models", timeout=10).json()["models"]
    assert {m["name"] for m in models} == {"lenet5", "resnet18"}
    for model in models:
        assert model["status"].upper() == "READY" and model["provider"] == expected, model


def test_sigterm_stops_the_server(server: Server) -> None:
    # Last test of each target: `docker stop` sends SIGTERM and kills after the grace period.
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {STOP_TIMEOUT_S:.0f}s after SIGTERM:\n{server.output()}")
    # uvicorn shuts down gracefully, then re-raises the signal: -SIGTERM (143 in a shell) is the norm.
    assert code in (0, -signal.SIGTERM), server.output()
    assert "Finished server process" in server.output(), "killed by the signal instead of shutting down"
