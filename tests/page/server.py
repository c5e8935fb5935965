"""The real service for the page tests: ``python -m service`` in a subprocess on 127.0.0.1 and a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """``python -m service --repository REPO`` as ``make serve`` runs it; ``env`` adds CNNSERVE_* settings."""

    def __init__(self, repository: Path, **env: str) -> None:
        self.repository = repository
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # One ONNX Runtime thread and no access log: the tests share two cores with a browser.
        self.env = {
            **os.environ,
            "CNNSERVE_POLL_INTERVAL_S": "0",
            "CNNSERVE_INTRA_OP_THREADS": "1",
            "CNNSERVE_ACCESS_LOG": "false",
            "CNNSERVE_LOG_LEVEL": "warning",
            **env,
        }
        self.api_key = self.env.get("CNNSERVE_API_KEY") or None
        self.log = Path(tempfile.mkdtemp(prefix="cnnserve-page-")) / "service.log"
        self.process: subprocess.Popen | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key} if self.api_key else {}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=60.0)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def start(self, *, settled: bool = True, timeout: float = 180.0) -> ServiceProcess:
        """Start; with ``settled``, wait until no model is LOADING any more (else only until it answers)."""
        command = [sys.executable, "-m", "service", "--repository", str(self.repository), "--port", str(self.port)]
        with self.log.open("wb") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=5.0) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the service exited with {self.process.returncode}:\n{self.output()}")
                try:
                    states = client.get("/readyz").json().get("models", {})
                    if not settled or (states and "LOADING" not in states.values()):
                        return self
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the service did not settle in {timeout:.0f} s:\n{self.output()}")
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.log.parent, ignore_errors=True)
