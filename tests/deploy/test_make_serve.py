"""``make serve`` for real: the build starts in the background and the first model serves while it runs.

The target is run as a user runs it (``make serve``, with the repository, checkpoints, log and
port pointed into a temporary folder). LeNet-5 is first in the default set, so it must be served
well before the build is done; the test sends it a real digit, then stops ``make`` the way a
user does (Ctrl-C reaches the whole process group) and checks that the background build went
with it.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("make-serve")]

ROOT = Path(__file__).resolve().parents[2]
FIRST_MODEL_TIMEOUT_S = 240.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _digit_png(index: int) -> tuple[bytes, int]:
    digits = load_digits()
    image = Image.fromarray((digits.images[index] * 255 / 16).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), int(digits.target[index])


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_serve_serves_lenet5_while_the_build_goes_on(tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "build.log"
    command = [
        "make",
        "--no-print-directory",
        "serve",
        f"REPO={tmp_path / 'repo'}",
        f"CHECKPOINTS={tmp_path / 'runs'}",
        f"BUILD_LOG={log}",
        f"PORT={port}",
    ]
    started = time.monotonic()
    server_log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    make = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=server_log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "CNNSERVE_LOG_LEVEL": "warning"},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        served_after = None
        with httpx.Client(base_url=url, timeout=10) as client:
            while time.monotonic() - started < FIRST_MODEL_TIMEOUT_S and make.poll() is None:
                try:
                    listed = {m["name"]: m["status"] for m in client.get("/models").json()["models"]}
                except httpx.TransportError:
                    listed = {}
                if listed.get("lenet5") == "READY":
                    served_after = time.monotonic() - started
                    break
                time.sleep(0.5)
            assert served_after is not None, f"lenet5 not served: {(tmp_path / 'serve.log').read_text()[-3000:]}"
            # The build is still going: the other networks are not all published yet.
            assert make.poll() is None and len(listed) < 13, listed
            hits = 0
            for index in range(10):
                body, label = _digit_png(index)
                r = client.post(
                    "/predict", params={"model": "lenet5"}, content=body, headers={"content-type": "image/png"}
                )
                assert r.status_code == 200, r.text
                hits += r.json()["predictions"][0]["top_k"][0]["label"] == str(label)
            assert hits >= 9, f"a trained LeNet-5 reads real digits ({hits}/10)"
        assert "lenet5: published version 1" in log.read_text()
    finally:
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C in the terminal
        try:
            make.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
        server_log.close()
    time.sleep(1)
    leftover = subprocess.run(["pgrep", "-f", f"export build --repository {tmp_path / 'repo'}"], capture_output=True)
    assert leftover.returncode == 1, f"the background build outlived make serve: {leftover.stdout!r}"
