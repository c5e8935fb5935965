"""``CNNSERVE_WORKERS`` server processes on one port, and the small supervisor that keeps them serving.

Each worker is a whole server (``create_app`` under uvicorn) with its own sessions and batch
queues, listening on its own socket bound to the port with ``SO_REUSEPORT`` (:func:`bind_port`):
the kernel spreads new connections evenly over the workers. What holds for one process holds for
the group:

* ``/metrics`` adds up every worker's series: the supervisor makes a private temporary folder
  for prometheus_client's multiprocess files (``PROMETHEUS_MULTIPROC_DIR``) and removes a dead
  worker's live gauges (``mark_process_dead``);
* readiness is every worker's (:mod:`service.core.readiness`: status files in the same folder);
* hot reload reaches every worker: each polls the repository;
* SIGTERM (or SIGINT) is passed to every worker as SIGTERM: each stops accepting, finishes the
  requests it holds (uvicorn's graceful shutdown, ``CNNSERVE_GRACEFUL_SHUTDOWN_S``) and exits;
  the supervisor waits for them, kills what is left after the grace period and a margin, removes
  the folder and exits 0;
* a worker that exits while the service runs is replaced under the same number; the replacement
  loads its models before it listens (until then the kernel gives its share to the others), and
  one that keeps failing at once is restarted less and less often (up to every 30 s);
* every log line names its process (``[worker 1]``, ``[supervisor]``);
* a worker whose supervisor dies (even by SIGKILL) gets SIGTERM from the kernel and drains too
  (Linux's ``PR_SET_PDEATHSIG``): no orphan keeps serving on the port.

uvicorn's own ``--workers`` supervisor restarts dead workers too, but offers no hook for the
metrics folder and the status files, no stable worker number, and starts a replacement's server
before its models are loaded. Workers are started with multiprocessing's ``spawn``: fresh
interpreters, no ONNX Runtime or thread state copied from the supervisor.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path

import uvicorn
from prometheus_client.multiprocess import mark_process_dead

from ..core.readiness import WorkerGroup, status_path
from ..observability.logs import configure_logging
from ..settings import Settings
from .server import uvicorn_config

__all__ = ["Supervisor", "run_worker"]

logger = logging.getLogger(__name__)

_SPAWN = multiprocessing.get_context("spawn")
QUICK_EXIT_S = 10.0  # a worker that exits sooner than this after its start is failing, not dying by accident
MAX_RESTART_DELAY_S = 30.0
STOP_MARGIN_S = 10.0  # after the graceful shutdown period, before a worker is killed
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _stop_with(supervisor: int) -> None:
    """Have the kernel send this process SIGTERM when ``supervisor`` (its parent) dies; Linux only."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: a worker outlives a killed supervisor
        return
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:  # it died before the call above
        os.kill(os.getpid(), signal.SIGTERM)


def bind_port(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` with ``SO_REUSEPORT``, not listening yet.

    The supervisor holds one to reserve the port (and resolve port 0); each worker binds its own to
    the same address and listens on it once its app has started: the kernel then spreads new
    connections evenly over the workers' sockets. (Workers accepting from one shared socket take
    them unevenly: whichever wakes first accepts every connection waiting; commit 391da95.)
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def run_worker(settings: Settings, group: WorkerGroup, address: tuple[str, int], supervisor: int) -> None:
    """A worker process: the app of ``create_app`` under uvicorn, listening on its own socket at ``address``."""
    from ..app import create_app  # in the worker: PROMETHEUS_MULTIPROC_DIR is set before metrics exist

    _stop_with(supervisor)
    configure_logging(settings.log_level, f"worker {group.index}", settings.log_format)
    # The root logger's format, with the worker's number.
    config = uvicorn_config(create_app(settings, group), settings, log_config=None)
    with bind_port(*address) as sock:  # uvicorn listens on it once the app has started
        uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        if settings.workers < 2:
            raise ValueError(f"a group needs at least 2 workers, got {settings.workers}")
        self.settings = settings
        self._workers: dict[int, BaseProcess] = {}
        self._started: dict[int, float] = {}
        self._failures: dict[int, int] = {}
        self._restart_at: dict[int, float] = {}
        self._stopping = False

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; the exit status."""
        folder = Path(tempfile.mkdtemp(prefix="cnnserve-workers-"))
        try:
            group = WorkerGroup(0, self.settings.workers, folder)
            group.metrics_dir.mkdir()
            group.status_dir.mkdir()
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(group.metrics_dir)  # inherited by every worker
            logger.info("%d workers; their metrics and status files in %s", self.settings.workers, folder)
            with (
                bind_port(self.settings.host, self.settings.port) as reserved,
                self._signals() as wakeup,
                contextlib.ExitStack() as stack,
            ):
                address = reserved.getsockname()[:2]
                logger.info("serving on http://%s:%d", *address)
                if self.settings.grpc_port:  # held while the workers serve it, so no one else takes it
                    stack.enter_context(bind_port(self.settings.host, self.settings.grpc_port))
                    logger.info("gRPC on %s:%d", self.settings.host, self.settings.grpc_port)
                for index in range(self.settings.workers):
                    self._start(WorkerGroup(index, self.settings.workers, folder), address)
                self._supervise(folder, address, wakeup)
                self._stop_all()
            return 0
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[socket.socket]:
        """SIGTERM and SIGINT start the shutdown; each wakes the supervisor's wait through a socket."""
        receive, notify = socket.socketpair()
        notify.setblocking(False)

        def stop(signum: int, _frame: object) -> None:
            if not self._stopping:
                logger.info("%s: stopping the workers", signal.Signals(signum).name)
            self._stopping = True

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        previous_fd = signal.set_wakeup_fd(notify.fileno())
        try:
            yield receive
        finally:
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            receive.close()
            notify.close()

    def _start(self, group: WorkerGroup, address: tuple[str, int]) -> None:
        process = _SPAWN.Process(
            target=run_worker,
            args=(self.settings, group, address, os.getpid()),
            name=f"cnnserve-worker-{group.index}",
        )
        process.start()
        self._workers[group.index] = process
        self._started[group.index] = time.monotonic()
        logger.info(
            "worker %d started (pid %s)%s", group.index, process.pid, " as a replacement" if group.replacement else ""
        )

    def _supervise(self, folder: Path, address: tuple[str, int], wakeup: socket.socket) -> None:
        while not self._stopping:
            now = time.monotonic()
            timeout = min([1.0, *(max(0.0, at - now) for at in self._restart_at.values())])
            sentinels = [p.sentinel for p in self._workers.values()]
            if wakeup in wait([*sentinels, wakeup], timeout):
                wakeup.recv(4096)
            if self._stopping:
                return
            for index, process in list(self._workers.items()):
                if process.exitcode is not None:
                    self._exited(index, process, folder)
            for index, at in list(self._restart_at.items()):
                if time.monotonic() >= at:
                    del self._restart_at[index]
                    self._start(WorkerGroup(index, self.settings.workers, folder, replacement=True), address)

    def _exited(self, index: int, process: BaseProcess, folder: Path) -> None:
        """Forget a worker that exited; its replacement starts at once, or later if it keeps failing."""
        del self._workers[index]
        assert process.pid is not None
        mark_process_dead(process.pid, str(folder / "metrics"))
        status_path(folder / "status", index).unlink(missing_ok=True)
        lived = time.monotonic() - self._started[index]
        self._failures[index] = self._failures.get(index, 0) + 1 if lived < QUICK_EXIT_S else 0
        delay = min(MAX_RESTART_DELAY_S, 2.0 ** (self._failures[index] - 1)) if self._failures[index] else 0.0
        logger.warning(
            "worker %d (pid %d) exited with status %s after %.1f s; replacing it%s",
            index,
            process.pid,
            process.exitcode,
            lived,
            f" in {delay:.0f} s" if delay else "",
        )
        self._restart_at[index] = time.monotonic() + delay

    def _stop_all(self) -> None:
        for process in self._workers.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.graceful_shutdown_s + STOP_MARGIN_S
        for index, process in self._workers.items():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                logger.warning("worker %d (pid %s) still running after the grace period: killed", index, process.pid)
                process.kill()
                process.join()
        logger.info("all workers stopped")
