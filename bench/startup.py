"""5. Start-up: process start to every model ready, with a warm repository.

``python -m service`` is started ``startup_repeats`` times on the built repository (the files
are in the page cache after the first start: "warm"); each time we record when ``/healthz``
first answers (live) and when ``GET /models`` shows every model READY with every published
variant of its latest version loaded and warmed up (ready).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .config import BenchConfig
from .server import ServerProcess
from .stats import median

__all__ = ["StartupResult", "run"]

log = logging.getLogger(__name__)


@dataclass
class StartupResult:
    models: int = 0
    sessions: int = 0  # variants loaded, over all models
    live_s: list[float] = field(default_factory=list)
    ready_s: list[float] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    @property
    def ready_median_s(self) -> float:
        return median(self.ready_s)

    @property
    def live_median_s(self) -> float:
        return median(self.live_s)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ready_median_s": self.ready_median_s, "live_median_s": self.live_median_s}


def run(config: BenchConfig, repository: Path, log_dir: Path) -> StartupResult:
    result = StartupResult()
    start = time.perf_counter()
    try:
        for attempt in range(config.startup_repeats + 1):  # the first start warms the page cache
            server = ServerProcess(repository, log_path=log_dir / f"startup-{attempt}.log", name="server (start-up)")
            with server:
                ready = server.wait_ready(config.startup_timeout_s)
                listed = server.models()["models"]
            if attempt == 0:
                result.models = len(listed)
                result.sessions = sum(
                    v.get("status") == "READY"
                    for m in listed
                    for ver in m.get("versions", [])
                    for v in ver.get("variants", [])
                )
                continue
            result.ready_s.append(ready)
            result.live_s.append(server.live_s if server.live_s is not None else ready)
            log.info(
                "startup: live after %.2f s, %d models ready after %.2f s", result.live_s[-1], result.models, ready
            )
    except Exception as exc:  # a server that never gets ready is a result, reported with its log
        log.exception("startup failed")
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - start
    return result
