"""3. Dynamic batching: throughput and latency under concurrency, batching on vs off vs the ceiling.

For each model two servers run side by side: ``on`` with the card's batching settings and
``off`` with ``max_batch_size`` 1 (every request its own ``session.run``). For each payload (a
JSON tensor to ``/predict``, and the tensor as raw bytes to ``/v2/models/{name}/infer``, as
Triton clients send it) and each concurrency the closed-loop load generator
(:func:`bench.loadgen.run_load`) alternates between them, and between runs this process
measures the ceiling: a bare ONNX Runtime session with the server's options running the same
inputs in batches of the card's ``max_batch_size`` - what the server would reach if HTTP, JSON
and queueing cost nothing.

While the largest concurrency runs against ``on``, a prober in its own process
(:mod:`bench.probe`) times ``GET /healthz`` every ``healthz_interval_s``: if the event loop
were blocked (by preprocessing or inference run on it) those latencies would show it.

The load generator shares the machine with the server; its CPU time is reported with the
results, and so is the server's, split between its event-loop thread (HTTP, JSON, routing,
batching) and its other threads (``session.run`` and ONNX Runtime's pools): on a 2-core machine
the three compete for the same cores, which is what bounds throughput against the ceiling.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import BenchConfig
from .loadgen import LoadResult, run_load
from .overhead import bare_session, model_file
from .payloads import photo, prepare, tensor_payload, v2_binary_payload
from .server import HOST, ROOT, ServerProcess
from .stats import Distribution, Target, histogram_quantile, median

__all__ = ["BatchingResult", "LevelResult", "run"]

log = logging.getLogger(__name__)

TARGET_CEILING_FRACTION = 0.85  # resnet50 at concurrency 32
TARGET_LENET_SPEEDUP = 5.0  # lenet5 at concurrency 64, on vs off
TARGET_HEALTHZ_P99_MS = 5.0
LOOP_LAG = "cnnserve_event_loop_lag_seconds"
MODES = ("on", "off")
PAYLOADS = {"json": tensor_payload, "v2-binary": v2_binary_payload}


@dataclass
class ModeResult:
    throughput: float  # requests per second, median over rounds
    throughputs: list[float]
    latency_ms: Distribution
    ok: int
    failed: dict[int, int]
    client_cpu_ms: float  # per request
    client_cpu_share: float  # of one core, over the run
    loop_cores: float = math.nan  # the server's event-loop thread, cores over the run
    other_cores: float = math.nan  # its inference threads (session.run, ONNX Runtime's pools)
    loop_lag_p50_ms: float = math.nan  # how late the server's event loop ran its timer (its /metrics histogram)
    loop_lag_p99_ms: float = math.nan


@dataclass
class LevelResult:
    model: str
    payload: str
    concurrency: int
    modes: dict[str, ModeResult] = field(default_factory=dict)
    ceiling: float = math.nan  # inputs per second, median over rounds
    ceilings: list[float] = field(default_factory=list)
    healthz_ms: Distribution | None = None
    healthz_failed: int = 0

    @property
    def ceiling_fraction(self) -> float:
        on = self.modes.get("on")
        return on.throughput / self.ceiling if on and self.ceiling > 0 else math.nan

    @property
    def speedup(self) -> float:
        on, off = self.modes.get("on"), self.modes.get("off")
        return on.throughput / off.throughput if on and off and off.throughput > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(ceiling_fraction=self.ceiling_fraction, speedup=self.speedup)
        return data


@dataclass
class BatchingResult:
    levels: list[LevelResult] = field(default_factory=list)
    batching: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> the card's settings
    seconds: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)

    def level(self, model: str, concurrency: int, payload: str) -> LevelResult | None:
        return next(
            (lv for lv in self.levels if (lv.model, lv.concurrency, lv.payload) == (model, concurrency, payload)), None
        )

    def targets(self, config: BenchConfig) -> list[Target]:
        out = []
        top = max(config.concurrency)
        heavy, light = _pick(config.batching_models, "resnet50"), _pick(config.batching_models, "lenet5", last=False)
        c_heavy = 32 if 32 in config.concurrency else top
        for payload in config.batching_payloads:
            lv = self.level(heavy, c_heavy, payload)
            out.append(
                Target(
                    "batching",
                    f"{heavy} ({payload}): throughput at concurrency {c_heavy} / the ceiling",
                    lv.ceiling_fraction if lv else math.nan,
                    TARGET_CEILING_FRACTION,
                    ">=",
                    "",
                    _ceiling_why(lv) if lv else self.errors.get(heavy, "not measured"),
                )
            )
        for payload in config.batching_payloads:
            lv = self.level(light, top, payload)
            out.append(
                Target(
                    "batching",
                    f"{light} ({payload}): throughput at concurrency {top}, batching on / off",
                    lv.speedup if lv else math.nan,
                    TARGET_LENET_SPEEDUP,
                    ">=",
                    "x",
                    _speedup_why(lv) if lv else self.errors.get(light, "not measured"),
                )
            )
        for model in config.batching_models:
            for payload in config.batching_payloads:
                lv = self.level(model, top, payload)
                value = lv.healthz_ms.p99 if lv and lv.healthz_ms and lv.healthz_ms.n else math.nan
                calm = self.level(model, min(config.concurrency), payload)
                out.append(
                    Target(
                        "batching",
                        f"{model} ({payload}): /healthz p99 while saturated (concurrency {top})",
                        value,
                        TARGET_HEALTHZ_P99_MS,
                        "<=",
                        "ms",
                        _healthz_why(lv, calm) if lv else self.errors.get(model, "not measured"),
                    )
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "levels": [lv.to_dict() for lv in self.levels],
            "batching": self.batching,
            "seconds": self.seconds,
            "errors": self.errors,
        }


def _pick(models: tuple[str, ...], wanted: str, last: bool = True) -> str:
    if wanted in models:
        return wanted
    return models[-1] if last else models[0]


def _cpu_split(mode: ModeResult) -> str:
    return (
        f"the server's event loop used {mode.loop_cores:.2f} cores ({1e3 * mode.loop_cores / mode.throughput:.2f} ms "
        f"per request), its inference threads {mode.other_cores:.2f}, the client {mode.client_cpu_share:.2f}"
    )


def _ceiling_why(lv: LevelResult) -> str:
    on = lv.modes.get("on")
    if not on:
        return ""
    return (
        f"{on.throughput:.0f} requests/s against a ceiling of {lv.ceiling:.0f} inputs/s, which bare inference "
        f"reaches with every core to itself; here {_cpu_split(on)}, of {os.cpu_count()} cores: inference gets what "
        "the HTTP side leaves"
    )


def _speedup_why(lv: LevelResult) -> str:
    on, off = lv.modes.get("on"), lv.modes.get("off")
    if not on or not off:
        return ""
    return (
        f"{on.throughput:.0f} vs {off.throughput:.0f} requests/s while bare batched inference does "
        f"{lv.ceiling:.0f} inputs/s: session.run is not what bounds either; with batching on {_cpu_split(on)}, "
        f"off {_cpu_split(off)}"
    )


def _healthz_why(lv: LevelResult, calm: LevelResult | None) -> str:
    on = lv.modes.get("on")
    if not on or not lv.healthz_ms or not lv.healthz_ms.n:
        return ""
    calm_on = calm.modes.get("on") if calm else None
    baseline = ""
    if calm and calm_on and calm is not lv:
        verdict = (
            "nothing blocks the loop: it is busy"
            if calm_on.loop_lag_p99_ms <= TARGET_HEALTHZ_P99_MS
            else "late even then"
        )
        baseline = f" (at concurrency {calm.concurrency}: p99 {calm_on.loop_lag_p99_ms:.1f} ms, {verdict})"
    return (
        f"/healthz p50 {lv.healthz_ms.p50:.2f} ms, p99 {lv.healthz_ms.p99:.2f} ms with {lv.concurrency} requests in "
        f"flight: {_cpu_split(on)}; the event loop ran its lag timer late by p50 {on.loop_lag_p50_ms:.1f} ms, "
        f"p99 {on.loop_lag_p99_ms:.1f} ms over the same runs{baseline}: a probe waits for its turn on the loop among "
        "the HTTP work of every request in flight"
    )


class _Prober:
    """``python -m bench.probe`` against a server while a load runs."""

    def __init__(self, port: int, interval: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.probe", "--host", HOST, "--port", str(port), "--interval", str(interval)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.process.stdout.readline()  # "ready"

    def finish(self) -> dict[str, Any]:
        out, _ = self.process.communicate("stop\n", timeout=60)
        return json.loads(out.strip().splitlines()[-1])


def _ceiling(session: Any, feed_batch: dict, batch: int, inputs: int, max_seconds: float) -> float:
    """Inputs per second of back-to-back ``session.run`` on full batches, about ``inputs`` of them."""
    session.run(None, feed_batch)
    done, start = 0, time.perf_counter()
    while done < inputs and (time.perf_counter() - start < max_seconds or done == 0):
        session.run(None, feed_batch)
        done += batch
    return done / (time.perf_counter() - start)


def _add_buckets(
    total: list[tuple[float, float]], after: list[tuple[float, float]], before: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """``total`` plus what a cumulative histogram gained from ``before`` to ``after`` (same buckets)."""
    gained = [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]
    return [(le, t + g) for (le, t), (_, g) in zip(total, gained, strict=True)] if total else gained


def _mode_result(
    runs: list[LoadResult], server_cpu: list[dict[str, float]], loop_lag: list[tuple[float, float]]
) -> ModeResult:
    """Pooled latencies and failures, median throughput; ``server_cpu`` holds each run's cores per thread group,
    ``loop_lag`` the server's lag histogram over all the runs."""
    latencies = [v for r in runs for v in r.latencies]
    failed: dict[int, int] = {}
    for r in runs:
        for status, count in r.statuses.items():
            if status != 200:
                failed[status] = failed.get(status, 0) + count
        if r.errors:
            failed[0] = failed.get(0, 0) + len(r.errors)
    cpu = sum(r.client_cpu_s for r in runs)
    wall = sum(r.wall_s for r in runs)
    ok = sum(r.ok for r in runs)
    return ModeResult(
        throughput=median(r.throughput for r in runs),
        throughputs=[r.throughput for r in runs],
        latency_ms=Distribution.of(latencies).scaled(1e3),
        ok=ok,
        failed=failed,
        client_cpu_ms=cpu / ok * 1e3 if ok else math.nan,
        client_cpu_share=cpu / wall if wall else math.nan,
        loop_cores=median(c["event_loop"] for c in server_cpu),
        other_cores=median(c["other"] for c in server_cpu),
        loop_lag_p50_ms=1e3 * histogram_quantile(0.5, loop_lag),
        loop_lag_p99_ms=1e3 * histogram_quantile(0.99, loop_lag),
    )


def measure_model(model: str, config: BenchConfig, repository: Path, log_dir: Path) -> tuple[list[LevelResult], dict]:
    card, path = model_file(repository, model)
    batch = card.batching.max_batch_size
    tensor = prepare(photo("224"), card.input)
    requests = {payload: PAYLOADS[payload](model, tensor).request for payload in config.batching_payloads}
    session = bare_session(path)
    feed_batch = {session.get_inputs()[0].name: np.repeat(tensor, batch, axis=0)}
    settings = {
        "on": {"variants": "fp32"},
        "off": {"variants": "fp32", "max_batch_size": 1, "max_queue_delay_microseconds": 0},
    }
    servers = {
        mode: ServerProcess(
            repository,
            settings=settings[mode],
            log_path=log_dir / f"batching-{model}-{mode}.log",
            name=f"server (batching {mode})",
        )
        for mode in MODES
    }
    for server in servers.values():
        server.start()
    levels = []
    try:
        for server in servers.values():
            server.wait_ready(config.server_start_timeout_s, expected={model})
        for payload, request in requests.items():
            for concurrency in config.concurrency:
                levels.append(
                    _measure_level(model, payload, request, concurrency, servers, session, feed_batch, batch, config)
                )
    finally:
        for server in servers.values():
            server.stop()
    return levels, card.batching.model_dump(mode="json")


def _measure_level(
    model: str,
    payload: str,
    request: Any,
    concurrency: int,
    servers: dict[str, ServerProcess],
    session: Any,
    feed_batch: dict,
    batch: int,
    config: BenchConfig,
) -> LevelResult:
    top = max(config.concurrency)
    runs: dict[str, list[LoadResult]] = {mode: [] for mode in MODES}
    server_cpu: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    loop_lag: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    level = LevelResult(model, payload, concurrency)
    probes: list[dict[str, Any]] = []
    for r in range(config.batching_rounds):
        for mode in MODES if r % 2 == 0 else MODES[::-1]:
            server = servers[mode]
            prober = _Prober(server.port, config.healthz_interval_s) if concurrency == top and mode == "on" else None
            lag_before = server.histogram(LOOP_LAG)
            try:
                before, started = server.thread_cpu_s(), time.perf_counter()
                result = asyncio.run(
                    run_load(
                        HOST,
                        server.port,
                        request,
                        concurrency=concurrency,
                        max_requests=config.batching_requests,
                        max_seconds=config.batching_seconds,
                        warmup_requests=2 * concurrency,
                    )
                )
                after, elapsed = server.thread_cpu_s(), time.perf_counter() - started
            finally:
                if prober is not None:
                    probes.append(prober.finish())
            runs[mode].append(result)
            loop_lag[mode] = _add_buckets(loop_lag[mode], server.histogram(LOOP_LAG), lag_before)
            # Cores over the whole call (warm-up included, as the CPU counters are): a share, not a sum.
            server_cpu[mode].append({k: (after[k] - before[k]) / elapsed for k in after})
            time.sleep(0.1)
        level.ceilings.append(_ceiling(session, feed_batch, batch, config.batching_requests, config.batching_seconds))
        time.sleep(0.1)
    level.modes = {mode: _mode_result(rs, server_cpu[mode], loop_lag[mode]) for mode, rs in runs.items()}
    level.ceiling = median(level.ceilings)
    if probes:
        level.healthz_ms = Distribution.of(v for p in probes for v in p["latencies"]).scaled(1e3)
        level.healthz_failed = sum(
            len(p["errors"]) + sum(c for s, c in p["statuses"].items() if s != "200") for p in probes
        )
    on, off = level.modes["on"], level.modes["off"]
    log.info(
        "batching: %s %s c=%d on %.0f/s (p99 %.1f ms) off %.0f/s ceiling %.0f/s -> %.0f%% of ceiling, %.2fx",
        model,
        payload,
        concurrency,
        on.throughput,
        on.latency_ms.p99,
        off.throughput,
        level.ceiling,
        100 * level.ceiling_fraction,
        level.speedup,
    )
    return level


def run(config: BenchConfig, repository: Path, log_dir: Path) -> BatchingResult:
    result = BatchingResult()
    start = time.perf_counter()
    for model in config.batching_models:
        log.info("batching: %s", model)
        try:
            levels, batching = measure_model(model, config, repository, log_dir)
        except Exception as exc:  # one model failing must not lose the others
            log.exception("batching: %s failed", model)
            result.errors[model] = f"{type(exc).__name__}: {exc}"
            continue
        result.levels.extend(levels)
        result.batching[model] = batching
    result.seconds = time.perf_counter() - start
    return result
