"""Real HTTP servers for the tests: uvicorn on 127.0.0.1 and a free port, in a daemon thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from service.app import create_app
from service.process.server import uvicorn_config
from service.settings import Settings


def free_port() -> int:
    """A port nothing listens on now (bound and released at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_settings(repository: Path, **overrides: Any) -> Settings:
    """Test settings: no polling unless asked, one ONNX Runtime thread (the CI box has two cores)."""
    base = {"repository": repository, "poll_interval_s": 0, "intra_op_threads": 1, "inference_workers": 2}
    return Settings(**{**base, **overrides})


class LiveServer:
    """uvicorn serving ``create_app(settings)`` on 127.0.0.1 in a daemon thread."""

    def __init__(self, settings: Settings, **app_options: Any) -> None:
        self.settings = settings
        self.app = create_app(settings, **app_options)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_target = f"127.0.0.1:{settings.grpc_port}"  # where gRPC listens, if settings.grpc_port
        config = uvicorn_config(self.app, settings, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def start(self, *, ready: bool = True, timeout: float = 120.0) -> LiveServer:
        """Serve; with ``ready``, wait until every model has finished loading (ready or not)."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        if ready:
            self.wait_until(self.settled, timeout)
        return self

    def settled(self, client: httpx.Client) -> bool:
        response = client.get("/readyz", headers=self.auth)
        states = response.json().get("models", {}) if response.status_code == 200 else {}
        return bool(states) and "LOADING" not in states.values()

    @property
    def auth(self) -> dict[str, str]:
        key = self.settings.api_key
        return {"X-API-Key": key.get_secret_value()} if key else {}

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, **kwargs)

    def wait_until(self, predicate: Callable[[httpx.Client], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self.client() as c:
            while not predicate(c):
                if time.monotonic() > deadline:
                    raise TimeoutError("condition not met in time")
                time.sleep(0.05)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()
