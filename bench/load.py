"""Load runs against real servers, shared by the batching and workers benchmarks.

:func:`run_once` sends one closed-loop load (:func:`bench.loadgen.run_load`) to one server and
records, besides what the clients saw, what the server spent: its CPU time from ``/proc`` (the
event-loop threads and the others, over its whole process tree) and the lag of its event loops
(its ``cnnserve_event_loop_lag_seconds`` histogram, over the run). :func:`summarize` pools the
runs of one server into a :class:`ModeResult`. Every answer is checked (:class:`Load`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import BenchConfig
from .grpc_load import infer_request, run_grpc_load, stream_check, top_class_check
from .loadgen import Check, HttpRequest, LoadResult, run_load
from .payloads import PAYLOADS, answer_check, answer_pool, photo, prepare
from .server import HOST, ServerProcess
from .stats import Distribution, histogram_quantile, median

__all__ = [
    "GRPC_PAYLOADS",
    "LOOP_LAG",
    "Load",
    "ModeResult",
    "Samples",
    "ceiling",
    "drive",
    "load_for",
    "probabilities_of",
    "run_once",
    "served",
    "servers",
    "summarize",
]

LOOP_LAG = "cnnserve_event_loop_lag_seconds"
WARMUP_PER_CONNECTION = 2  # requests each connection sends before a run is measured


# Loads over gRPC (bench.grpc_load) beside the HTTP payloads of bench.payloads: unary ModelInfer, and
# ModelStreamInfer messages; both with raw contents and the top class back, as the v2-binary payload.
GRPC_PAYLOADS = ("grpc", "grpc-stream")


@dataclass(frozen=True)
class Load:
    """What the clients send (requests for inputs of different top classes) and the check of each answer."""

    requests: list[HttpRequest] | list[bytes]  # HTTP requests, or serialized ModelInferRequests
    check: Check
    classes: list[int]
    inputs: list[np.ndarray]  # the tensors the requests carry, (1, C, H, W) each
    payload: str = "v2-binary"


def probabilities_of(session: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``x -> probabilities`` with a bare ONNX Runtime session (the output named so, else the last)."""
    names = [o.name for o in session.get_outputs()]
    output = "probabilities" if "probabilities" in names else names[-1]
    feed = session.get_inputs()[0].name
    return lambda x: session.run([output], {feed: x})[0]


def load_for(model: str, payload: str, card: Any, session: Any, size: int) -> Load:
    """``size`` requests (at most) of ``payload`` for ``model``, inputs of different top classes."""
    pool = answer_pool(prepare(photo("224"), card.input), probabilities_of(session), size)
    if payload in GRPC_PAYLOADS:
        check = top_class_check(pool.classes)
        grpc_requests = [infer_request(model, x) for x in pool.inputs]
        checked = stream_check(check) if payload == "grpc-stream" else check
        return Load(grpc_requests, checked, pool.classes, pool.inputs, payload)
    requests = [PAYLOADS[payload](model, x).request for x in pool.inputs]
    return Load(requests, answer_check(payload, pool.classes), pool.classes, pool.inputs, payload)


@dataclass
class ModeResult:
    throughput: float  # requests per second, median over rounds
    throughputs: list[float]
    latency_ms: Distribution
    ok: int
    failed: dict[int, int]
    client_cpu_ms: float  # per request
    client_cpu_share: float  # of one core, over the run
    loop_cores: float = math.nan  # the server's event-loop threads, cores over the run
    other_cores: float = math.nan  # its inference threads (session.run, ONNX Runtime's pools)
    loop_lag_p50_ms: float = math.nan  # how late the server's event loops ran their timer (its /metrics histogram)
    loop_lag_p99_ms: float = math.nan
    server_cpu_ms: float = math.nan  # the server's CPU time per request, all its processes and threads
    checked: int = 0  # answers compared with their input's top class
    wrong: int = 0
    lost: int = 0  # requests without a 200 answer


@dataclass
class Samples:
    """The runs of one server at one load."""

    runs: list[LoadResult] = field(default_factory=list)
    cores: list[dict[str, float]] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    loop_lag: list[tuple[float, float]] = field(default_factory=list)


def _add_buckets(
    total: list[tuple[float, float]], after: list[tuple[float, float]], before: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """``total`` plus what a cumulative histogram gained from ``before`` to ``after`` (same buckets)."""
    gained = [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]
    return [(le, t + g) for (le, t), (_, g) in zip(total, gained, strict=True)] if total else gained


def drive(server: ServerProcess, load: Load, concurrency: int, max_requests: int, max_seconds: float) -> LoadResult:
    """A closed-loop run of ``load`` against ``server``, every answer checked, after a warm-up of
    :data:`WARMUP_PER_CONNECTION` requests per connection; a gRPC load to the server's gRPC port."""
    options: dict[str, Any] = {
        "concurrency": concurrency,
        "max_requests": max_requests,
        "max_seconds": max_seconds,
        "warmup_requests": WARMUP_PER_CONNECTION * concurrency,
        "check": load.check,
    }
    if load.payload in GRPC_PAYLOADS:
        stream = load.payload == "grpc-stream"
        return asyncio.run(run_grpc_load(HOST, server.grpc_port, load.requests, stream=stream, **options))
    return asyncio.run(run_load(HOST, server.port, load.requests, **options))


def served(result: LoadResult) -> int:
    """The requests the server answered during :func:`drive`, its warm-up's included as its CPU counters
    include them: the divisor of the server's CPU per request."""
    return result.ok + result.lost + WARMUP_PER_CONNECTION * result.concurrency


def run_once(server: ServerProcess, load: Load, concurrency: int, config: BenchConfig, samples: Samples) -> None:
    lag_before = server.histogram(LOOP_LAG)
    before, started = server.thread_cpu_s(), time.perf_counter()
    result = drive(server, load, concurrency, config.batching_requests, config.batching_seconds)
    after, elapsed = server.thread_cpu_s(), time.perf_counter() - started
    samples.runs.append(result)
    samples.loop_lag = _add_buckets(samples.loop_lag, server.histogram(LOOP_LAG), lag_before)
    # Cores over the whole call (warm-up included, as the CPU counters are): a share, not a sum.
    samples.cores.append({k: (after[k] - before[k]) / elapsed for k in after})
    samples.cpu_ms.append(1e3 * sum(after[k] - before[k] for k in after) / served(result))


def summarize(samples: Samples) -> ModeResult:
    """Pooled latencies and failures, median throughput and cores, CPU per request over all the runs."""
    runs = samples.runs
    failed: dict[int, int] = {}
    for r in runs:
        for status, count in r.statuses.items():
            if status != 200:
                failed[status] = failed.get(status, 0) + count
        if r.errors:
            failed[0] = failed.get(0, 0) + len(r.errors)
    cpu, wall, ok = sum(r.client_cpu_s for r in runs), sum(r.wall_s for r in runs), sum(r.ok for r in runs)
    return ModeResult(
        throughput=median(r.throughput for r in runs),
        throughputs=[r.throughput for r in runs],
        latency_ms=Distribution.of(v for r in runs for v in r.latencies).scaled(1e3),
        ok=ok,
        failed=failed,
        client_cpu_ms=cpu / ok * 1e3 if ok else math.nan,
        client_cpu_share=cpu / wall if wall else math.nan,
        loop_cores=median(c["event_loop"] for c in samples.cores),
        other_cores=median(c["other"] for c in samples.cores),
        loop_lag_p50_ms=1e3 * histogram_quantile(0.5, samples.loop_lag),
        loop_lag_p99_ms=1e3 * histogram_quantile(0.99, samples.loop_lag),
        server_cpu_ms=median(samples.cpu_ms),
        checked=sum(r.checked for r in runs),
        wrong=sum(r.wrong for r in runs),
        lost=sum(r.lost for r in runs),
    )


@contextlib.contextmanager
def servers(
    repository: Path,
    settings: Mapping[str, Mapping[str, object]],
    log_dir: Path,
    label: str,
    config: BenchConfig,
    models: set[str] | None = None,
) -> Iterator[dict[str, ServerProcess]]:
    """One server per entry of ``settings``, started together, every model ready, stopped at the end."""
    started = {
        name: ServerProcess(
            repository, settings=s, log_path=log_dir / f"{label}-{name}.log", name=f"server ({label} {name})"
        )
        for name, s in settings.items()
    }
    for server in started.values():
        server.start()
    try:
        for server in started.values():
            server.wait_ready(config.server_start_timeout_s, expected=models)
        yield started
    finally:
        for server in started.values():
            server.stop()


def ceiling(session: Any, inputs: np.ndarray, batch: int, config: BenchConfig) -> float:
    """Inputs per second of back-to-back ``session.run`` on full batches: what the server would reach if HTTP,
    JSON and queueing cost nothing."""
    feed = {session.get_inputs()[0].name: np.repeat(inputs, batch, axis=0)}
    session.run(None, feed)
    done, start = 0, time.perf_counter()
    while done < config.batching_requests and (time.perf_counter() - start < config.batching_seconds or done == 0):
        session.run(None, feed)
        done += batch
    return done / (time.perf_counter() - start)
