"""The real server in a subprocess: ``python -m service`` on a free loopback port.

:class:`ServerProcess` starts it with ``CNNSERVE_*`` settings, waits until every model of the
repository is ready (``GET /models``: each model READY with every published variant of its
latest version loaded; ``GET /readyz``: in every worker process), and stops it. Its output goes
to a log file, named in errors. Its CPU time is read from ``/proc`` for the whole process tree:
the supervisor and every worker of a multi-process server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from .loadgen import HttpRequest, SyncConnection

__all__ = ["HOST", "ServerError", "ServerProcess", "all_ready", "free_port"]

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent


class ServerError(RuntimeError):
    """The server did not start or did not become ready; the message quotes its log."""


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def all_ready(models: Any, expected: set[str] | None = None, variants: set[str] | None = None) -> bool:
    """Whether a ``GET /models`` body says every model (and ``expected`` ones) is fully loaded.

    Fully: READY, with every published variant of its latest version among ``variants`` (the
    server's ``CNNSERVE_VARIANTS``; ``None``: all) loaded.
    """
    listed = models.get("models", []) if isinstance(models, dict) else []
    if not listed or (expected and not expected <= {m.get("name") for m in listed}):
        return False
    for model in listed:
        if model.get("status") != "READY":
            return False
        latest = model.get("latest_version")
        for version in model.get("versions", []):
            if version.get("version") != latest:
                continue
            for variant in version.get("variants", []):
                wanted = variants is None or variant.get("precision") in variants
                if wanted and variant.get("reason") is None and variant.get("status") != "READY":
                    return False  # published, not loaded yet
    return True


class ServerProcess:
    """``python -m service`` against ``repository`` with ``settings`` as ``CNNSERVE_*`` variables, run from the
    checkout ``root`` (this one unless another is given: ``python -m bench.profile --against``)."""

    def __init__(
        self,
        repository: Path,
        *,
        settings: Mapping[str, object] | None = None,
        log_path: Path | None = None,
        name: str = "server",
        root: Path = ROOT,
    ) -> None:
        self.repository = Path(repository)
        self.root = Path(root)
        self.settings = dict(settings or {})
        self.name = name
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.live_s: float | None = None
        self.ready_s: float | None = None
        self._log = None

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CNNSERVE_")}
        env["CNNSERVE_GRPC_PORT"] = "0"  # unless the settings give it a port: servers run side by side
        env.update({f"CNNSERVE_{k.upper()}": _env_value(v) for k, v in self.settings.items()})
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.root), env.get("PYTHONPATH")]))
        return env

    @property
    def grpc_port(self) -> int:
        """The gRPC port of the settings (``grpc_port``); 0 when they give none."""
        return int(self.settings.get("grpc_port", 0))

    def start(self) -> ServerProcess:
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "service",
            "--repository",
            str(self.repository),
            "--host",
            HOST,
            "--port",
            str(self.port),
        ]
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            cwd=self.root,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout: float = 300.0, expected: set[str] | None = None, poll_s: float = 0.01) -> float:
        """Seconds from :meth:`start` to every model ready; also records when ``/healthz`` first answered."""
        assert self.process is not None, "start() first"
        deadline = self.started_at + timeout
        request = HttpRequest.get("/models").encode(HOST, self.port)
        health = HttpRequest.get("/healthz").encode(HOST, self.port)
        connection = SyncConnection(HOST, self.port, timeout=10)
        variants = self.settings.get("variants")
        wanted = None if variants is None else set(_env_value(variants).split(","))
        last: Any = None
        try:
            while time.perf_counter() < deadline:
                if self.process.poll() is not None:
                    raise ServerError(f"{self.name} exited with status {self.process.returncode}:\n{self.log_tail()}")
                try:
                    if self.live_s is None and connection.send(health).status == 200:
                        self.live_s = time.perf_counter() - self.started_at
                    response = connection.send(request)
                    last = response.json() if response.status == 200 else response.body[:300]
                    if (
                        response.status == 200
                        and all_ready(last, expected, wanted)
                        and self._every_worker_ready(connection)
                    ):
                        self.ready_s = time.perf_counter() - self.started_at
                        return self.ready_s
                except (OSError, json.JSONDecodeError):
                    connection.close()
                time.sleep(poll_s)
        finally:
            connection.close()
        raise ServerError(
            f"{self.name} not ready after {timeout:.0f} s; GET /models said {_states(last)}; "
            f"log {self.log_path}:\n{self.log_tail(10)}"
        )

    def _every_worker_ready(self, connection: SyncConnection) -> bool:
        """``GET /readyz``: 200 once every worker has a model ready; its models' states are those of every worker."""
        response = connection.send(HttpRequest.get("/readyz").encode(HOST, self.port))
        models = response.json().get("models", {}) if response.status == 200 else {}
        return bool(models) and set(models.values()) == {"READY"}

    def pids(self) -> list[int]:
        """The server's process and its descendants (a multi-process server's workers)."""
        assert self.process is not None
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in _tasks(pid):
                try:
                    todo += [int(c) for c in (task / "children").read_text().split()]
                except OSError:
                    continue
        return found

    def thread_cpu_s(self) -> dict[str, float]:
        """CPU seconds so far of the server's main threads (each process's event loop: HTTP, JSON, routing,
        batching) and of all its other threads together (session.run and ONNX Runtime's pools), from /proc."""
        out = {"event_loop": 0.0, "other": 0.0}
        for pid in self.pids():
            for task in _tasks(pid):
                seconds = _task_cpu_s(task)
                if seconds is not None:
                    out["event_loop" if task.name == str(pid) else "other"] += seconds
        return out

    def histogram(self, name: str) -> list[tuple[float, float]]:
        """``(le, cumulative count)`` of the unlabelled Prometheus histogram ``name`` in ``GET /metrics``."""
        with SyncConnection(HOST, self.port) as connection:
            text = connection.send(HttpRequest.get("/metrics")).body.decode()
        for family in text_string_to_metric_families(text):
            if family.name == name:
                return [(float(s.labels["le"]), s.value) for s in family.samples if s.name == f"{name}_bucket"]
        raise ServerError(f"{self.name}: /metrics has no histogram {name}")

    def models(self) -> dict[str, Any]:
        with SyncConnection(HOST, self.port) as connection:
            return connection.send(HttpRequest.get("/models")).json()

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _task_cpu_s(task: Path) -> float | None:
    """A thread's CPU seconds: the scheduler's nanoseconds (``schedstat``) where the kernel has them, else
    ``stat``'s utime + stime, counted in 10 ms ticks (too coarse for a short run); None if it ended."""
    try:
        return int((task / "schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tasks(pid: int) -> list[Path]:
    try:
        return list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process ended meanwhile
        return []


def _states(models: Any) -> str:
    if not isinstance(models, dict):
        return repr(models)
    return (
        ", ".join(
            f"{m.get('name')} {m.get('status')}" + (f" ({m.get('reason')})" if m.get("reason") else "")
            for m in models.get("models", [])
        )
        or "no models"
    )


def _env_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)
