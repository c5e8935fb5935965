"""1. Runtime: ONNX Runtime vs PyTorch eager, per network, on the same machine and threads.

Each network is built with ``models.create_model`` (random weights, seeded: speed does not
depend on what was learnt) at the resolution it is trained and served at (its recipe's
``image_size``), wrapped exactly as it is exported (``ServingModel``: logits and softmax), and
exported to ONNX once by ``export.onnx_export.export_onnx`` (cached under the work folder).
Then batch-1 latency and batch-N throughput of both runtimes are timed interleaved:

* PyTorch: ``eval()``, ``torch.inference_mode()``, ``torch.set_num_threads(threads)``;
* ONNX Runtime: all graph optimisations, ``intra_op_num_threads=threads``, one inter-op thread.

Target: ONNX Runtime >= 1.4x faster at batch 1 for every network. A network under the target
is profiled with both profilers (ONNX Runtime's and ``torch.profiler``) and the report shows
where each spends its time.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import BenchConfig
from .stats import Target, median
from .timing import interleave, round_ratios

__all__ = ["TARGET_SPEEDUP", "RuntimeResult", "RuntimeRow", "ort_profile", "run"]

log = logging.getLogger(__name__)

TARGET_SPEEDUP = 1.4


@dataclass
class RuntimeRow:
    model: str
    input_shape: list[int]
    threads: int = 0
    params: int = 0
    ort_b1_ms: float = math.nan
    torch_b1_ms: float = math.nan
    speedup_b1: float = math.nan
    speedup_b1_range: tuple[float, float] = (math.nan, math.nan)
    ort_batch_ips: float = math.nan  # images per second at the large batch
    torch_batch_ips: float = math.nan
    speedup_batch: float = math.nan
    speedup_batch_range: tuple[float, float] = (math.nan, math.nan)
    profile: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class RuntimeResult:
    threads: list[int]
    batch: int
    rows: list[RuntimeRow] = field(default_factory=list)
    seconds: float = 0.0

    def targets(self) -> list[Target]:
        """One per network: the smallest batch-1 speed-up over the thread counts measured."""
        by_model: dict[str, list[RuntimeRow]] = {}
        for row in self.rows:
            by_model.setdefault(row.model, []).append(row)
        out = []
        for model, rows in by_model.items():
            worst = min(rows, key=lambda r: -math.inf if math.isnan(r.speedup_b1) else r.speedup_b1)
            why = f"not measured: {worst.error}" if worst.error else (worst.profile or {}).get("summary", "")
            threads = "/".join(str(r.threads) for r in rows)
            out.append(
                Target(
                    "runtime",
                    f"{model}: ONNX Runtime / PyTorch speed at batch 1 ({threads} threads, worst)",
                    worst.speedup_b1,
                    TARGET_SPEEDUP,
                    ">=",
                    "x",
                    why,
                    measured_on=f"{worst.threads} thread(s)",
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "threads": self.threads,
            "batch": self.batch,
            "seconds": self.seconds,
            "rows": [asdict(r) for r in self.rows],
        }


def image_size(name: str) -> int:
    """The resolution ``name`` is trained and served at (its recipe), else its canonical input."""
    try:
        from training.recipes import get_recipe

        return get_recipe(name).image_size
    except ImportError:
        import models

        info = models.get_model_info(name)
        return info.input_size[1] if info.fixed_input_size else max(32, info.min_input_size)


def _network(name: str, seed: int):
    import torch

    import models
    from export.onnx_export import ServingModel, serving_copy

    torch.manual_seed(seed)
    model = models.create_model(name, num_classes=10)
    return ServingModel(serving_copy(model)).eval(), model


def onnx_file(name: str, shape: list[int], config: BenchConfig, model: Any) -> Path:
    """The cached export of ``name`` for (N, *shape) inputs; exported now if missing or stale."""
    import torch

    from export.onnx_export import EXPORT_REVISION, export_onnx

    cache = config.work_dir / "onnx"
    key = f"{'x'.join(map(str, shape))}-seed{config.seed}-torch{torch.__version__}-r{EXPORT_REVISION}"
    path = cache / f"{name}-{key}.onnx"
    if not path.exists():
        start = time.perf_counter()
        export_onnx(model, path, shape)
        log.info("exported %s in %.1f s", name, time.perf_counter() - start)
    return path


def ort_session(path: Path, threads: int, profile_prefix: str | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])


def _initializer_bytes(path: Path) -> dict[str, int]:
    """Bytes of weights (initializers) each node of the ONNX file reads.

    The profiler's own ``parameter_size`` is 0 for pre-packed weights (Gemm, Conv), so count them here.
    """
    import onnx

    graph = onnx.load(os.fspath(path)).graph
    sizes = {
        init.name: int(np.prod(init.dims)) * onnx.helper.tensor_dtype_to_np_dtype(init.data_type).itemsize
        for init in graph.initializer
    }
    return {node.name: sum(sizes.get(i, 0) for i in node.input) for node in graph.node}


def ort_profile(path: Path, x: np.ndarray, threads: int, work: Path, calls: int) -> dict[str, Any]:
    """ONNX Runtime's profiler over ``calls`` runs: time and weight bytes per operator type, per run."""
    work.mkdir(parents=True, exist_ok=True)
    session = ort_session(path, threads, profile_prefix=os.fspath(work / "ort"))
    feed = {session.get_inputs()[0].name: x}
    for _ in range(calls + 1):  # the first is a warm-up, dropped below
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    node_weights = _initializer_bytes(path)
    runs = [
        e for e in events if e.get("cat") == "Session" and e.get("name") in ("model_run", "SequentialExecutor::Execute")
    ]
    first_end = runs[0]["ts"] + runs[0]["dur"] if runs else 0
    by_op: dict[str, float] = defaultdict(float)
    weights: dict[str, float] = defaultdict(float)
    for event in events:
        if (
            event.get("cat") == "Node"
            and event.get("name", "").endswith("_kernel_time")
            and event.get("ts", 0) > first_end
        ):
            args = event.get("args", {})
            by_op[args.get("op_name", "?")] += event.get("dur", 0) / calls
            node = event["name"].removeprefix("fused ").removesuffix("_kernel_time")
            weights[args.get("op_name", "?")] += node_weights.get(node, 0) / calls
    run_us = median(e.get("dur", 0) for e in runs[1:]) if len(runs) > 1 else math.nan
    ops = dict(sorted(by_op.items(), key=lambda kv: -kv[1]))
    return {"run_us": run_us, "ops_us": ops, "weight_bytes": {op: weights[op] for op in ops}}


def _torch_profile(net: Any, x: Any, calls: int) -> dict[str, Any]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        net(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(calls):
                net(x)
    rows = [(e.key, e.self_cpu_time_total / calls) for e in prof.key_averages()]
    rows.sort(key=lambda kv: -kv[1])
    return {"ops_us": dict(rows[:12]), "total_us": sum(us for _, us in rows)}


def _profile_summary(ort_prof: dict[str, Any], torch_prof: dict[str, Any], bandwidth_gbs: float | None) -> str:
    def top(ops: dict[str, float], total: float, n: int = 3) -> str:
        return ", ".join(f"{op} {us / total:.0%}" for op, us in list(ops.items())[:n]) if total > 0 else "-"

    ort_ops = ort_prof["ops_us"]
    ort_total = sum(ort_ops.values())
    text = (
        f"profiles at batch 1: ONNX Runtime {ort_total / 1e3:.2f} ms in operators ({top(ort_ops, ort_total)}); "
        f"PyTorch {torch_prof['total_us'] / 1e3:.2f} ms self CPU ({top(torch_prof['ops_us'], torch_prof['total_us'])})"
    )
    if ort_ops:
        op, us = next(iter(ort_ops.items()))
        weight_mb = ort_prof["weight_bytes"].get(op, 0) / 1e6
        if weight_mb >= 10 and us > 0:
            rate = weight_mb / 1e3 / (us / 1e6)
            text += (
                f". ONNX Runtime's {op} reads {weight_mb:.0f} MB of weights per image at {rate:.1f} GB/s"
                + (f" (this machine streams {bandwidth_gbs:.1f} GB/s on one core)" if bandwidth_gbs else "")
                + ": memory-bound in both runtimes, so no runtime can be much faster there"
            )
    return text


def measure(name: str, config: BenchConfig, threads: int) -> RuntimeRow:
    import torch

    import models

    torch.set_num_threads(threads)
    info = models.get_model_info(name)
    size = image_size(name)
    shape = [info.input_size[0], size, size]
    net, model = _network(name, config.seed)
    row = RuntimeRow(name, shape, threads, params=sum(p.numel() for p in model.parameters()))
    path = onnx_file(name, shape, config, model)
    session = ort_session(path, threads)
    input_name = session.get_inputs()[0].name
    rng = np.random.default_rng(config.seed)
    x1 = rng.standard_normal((1, *shape), dtype=np.float32)
    xb = rng.standard_normal((config.runtime_batch, *shape), dtype=np.float32)
    t1, tb = torch.from_numpy(x1), torch.from_numpy(xb)

    def ort_run(x: np.ndarray):
        return lambda: session.run(None, {input_name: x})

    def torch_run(x: Any):
        def call() -> None:
            with torch.inference_mode():
                net(x)

        return call

    timed = interleave(
        {"ort_b1": ort_run(x1), "torch_b1": torch_run(t1), "ort_batch": ort_run(xb), "torch_batch": torch_run(tb)},
        rounds=config.rounds,
        block_s=config.block_s,
        max_calls=config.max_calls,
        warmup_calls=config.warmup_calls,
        max_seconds=config.comparison_seconds,
    )
    row.ort_b1_ms = timed["ort_b1"].median_s * 1e3
    row.torch_b1_ms = timed["torch_b1"].median_s * 1e3
    row.speedup_b1 = row.torch_b1_ms / row.ort_b1_ms
    r1 = round_ratios(timed["torch_b1"], timed["ort_b1"])
    row.speedup_b1_range = (min(r1), max(r1))
    row.ort_batch_ips = config.runtime_batch / timed["ort_batch"].median_s
    row.torch_batch_ips = config.runtime_batch / timed["torch_batch"].median_s
    row.speedup_batch = row.ort_batch_ips / row.torch_batch_ips
    rb = round_ratios(timed["torch_batch"], timed["ort_batch"])
    row.speedup_batch_range = (min(rb), max(rb))
    if config.profile_missed and row.speedup_b1 < TARGET_SPEEDUP:
        calls = max(5, min(50, int(1.0 / max(row.ort_b1_ms / 1e3, 1e-4))))
        ort_prof = ort_profile(path, x1, threads, config.work_dir / "profiles" / f"{name}-{threads}t", calls)
        torch_prof = _torch_profile(net, t1, calls)
        from .machine import memory_bandwidth_gbs

        summary = _profile_summary(ort_prof, torch_prof, memory_bandwidth_gbs())
        row.profile = {"ort": ort_prof, "torch": torch_prof, "summary": summary}
    return row


def run(config: BenchConfig) -> RuntimeResult:
    import torch

    result = RuntimeResult(list(config.runtime_thread_counts), config.runtime_batch)
    start = time.perf_counter()
    previous = torch.get_num_threads()
    try:
        for name in config.runtime_models:
            for threads in config.runtime_thread_counts:
                log.info("runtime: %s, %d thread(s)", name, threads)
                try:
                    row = measure(name, config, threads)
                except Exception as exc:  # one network failing (export, a missing op) must not lose the others
                    log.exception("runtime: %s failed", name)
                    row = RuntimeRow(name, [], threads, error=f"{type(exc).__name__}: {exc}")
                else:
                    log.info(
                        "runtime: %s %dt batch 1 ort %.2f ms torch %.2f ms (%.2fx); batch %d %.2fx",
                        name,
                        threads,
                        row.ort_b1_ms,
                        row.torch_b1_ms,
                        row.speedup_b1,
                        config.runtime_batch,
                        row.speedup_batch,
                    )
                result.rows.append(row)
    finally:
        torch.set_num_threads(previous)
    result.seconds = time.perf_counter() - start
    return result
