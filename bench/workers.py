"""6. Workers: the same load against 1, 2, 4 and 8 worker processes (as many of those as the machine has CPUs for).

For each of ``config.workers_loads`` (a model and a concurrency; v2 binary requests, every answer
checked as in :mod:`bench.batching`) one server per worker count runs with the service's
defaults otherwise (the inference fast path, the usable CPUs divided among the workers' ONNX
Runtime threads); the load alternates between them round by round. The curve shows what each
added process buys on this machine: on 2 cores, with the load generator on the same cores, the
clients and the servers share them; on a bigger machine the curve goes on.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .batching import answers_target
from .config import BenchConfig
from .load import ModeResult, Samples, load_for, run_once, servers, summarize
from .overhead import bare_session, model_file
from .stats import Target

__all__ = ["WorkersResult", "WorkersRow", "run"]

log = logging.getLogger(__name__)

PAYLOAD = "v2-binary"


@dataclass
class WorkersRow:
    model: str
    concurrency: int
    workers: int
    result: ModeResult

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WorkersResult:
    rows: list[WorkersRow] = field(default_factory=list)
    seconds: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)

    def scaling(self, model: str) -> float:
        """Requests/s of the most workers over one worker's."""
        rows = sorted((r for r in self.rows if r.model == model), key=lambda r: r.workers)
        if len(rows) < 2 or rows[0].result.throughput <= 0:
            return math.nan
        return rows[-1].result.throughput / rows[0].result.throughput

    def targets(self) -> list[Target]:
        return [answers_target("workers", [r.result for r in self.rows], self.errors)]

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [r.to_dict() for r in self.rows], "seconds": self.seconds, "errors": self.errors}


def measure(model: str, concurrency: int, config: BenchConfig, repository: Path, log_dir: Path) -> list[WorkersRow]:
    card, path = model_file(repository, model)
    load = load_for(model, PAYLOAD, card, bare_session(path), config.answers)
    settings = {f"{w} workers": {"variants": "fp32", "workers": w} for w in config.worker_counts}
    samples = {name: Samples() for name in settings}
    with servers(repository, settings, log_dir, f"workers-{model}", config, {model}) as started:
        for r in range(config.batching_rounds):
            for name in list(started) if r % 2 == 0 else list(started)[::-1]:
                run_once(started[name], load, concurrency, config, samples[name])
                time.sleep(0.1)
    rows = [WorkersRow(model, concurrency, w, summarize(samples[f"{w} workers"])) for w in config.worker_counts]
    for row in rows:
        log.info(
            "workers: %s c=%d %d worker(s): %.0f requests/s, p99 %.1f ms, %.3f ms CPU/request, %d lost, %d wrong",
            model,
            concurrency,
            row.workers,
            row.result.throughput,
            row.result.latency_ms.p99,
            row.result.server_cpu_ms,
            row.result.lost,
            row.result.wrong,
        )
    return rows


def run(config: BenchConfig, repository: Path, log_dir: Path) -> WorkersResult:
    result = WorkersResult()
    start = time.perf_counter()
    for model, concurrency in config.workers_loads:
        log.info("workers: %s at concurrency %d, %s worker(s)", model, concurrency, config.worker_counts)
        try:
            result.rows += measure(model, concurrency, config, repository, log_dir)
        except Exception as exc:  # one model failing must not lose the others
            log.exception("workers: %s failed", model)
            result.errors[model] = f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - start
    return result
