"""4. INT8: the published INT8 variants against float32, speed and test accuracy.

Speed: bare ONNX Runtime sessions on the two files of the same version, with the server's
options, timed interleaved at batch 1 and at the runtime benchmark's batch. Accuracy: the
test top-1 of both variants as the build measured it through ONNX Runtime on the test split
(``verification.accuracy`` of the card; the INT8 model is calibrated on training images only).

Target: INT8 >= 1.8x faster on the convolution-heavy networks (resnet50, vgg16) with at most
1 point of test top-1 lost; judged at batch 1 and at the runtime benchmark's batch. A batch-1
miss is profiled (ONNX Runtime's profiler on both files): the report shows where each spends it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import BenchConfig
from .overhead import bare_session, model_file
from .stats import Target
from .timing import interleave, round_ratios

__all__ = ["TARGET_INT8_MAX_DROP", "TARGET_INT8_SPEEDUP", "Int8Result", "Int8Row", "run"]

log = logging.getLogger(__name__)

TARGET_INT8_SPEEDUP = 1.8
TARGET_INT8_MAX_DROP = 1.0  # points of test top-1


@dataclass
class Int8Row:
    model: str
    input_shape: list[int]
    fp32_top1: float | None = None
    int8_top1: float | None = None
    fp32_b1_ms: float = math.nan
    int8_b1_ms: float = math.nan
    speedup_b1: float = math.nan
    speedup_b1_range: tuple[float, float] = (math.nan, math.nan)
    fp32_batch_ips: float = math.nan
    int8_batch_ips: float = math.nan
    speedup_batch: float = math.nan
    profile: str | None = None
    error: str | None = None

    @property
    def top1_change(self) -> float:
        if self.fp32_top1 is None or self.int8_top1 is None:
            return math.nan
        return self.int8_top1 - self.fp32_top1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "top1_change": self.top1_change}


@dataclass
class Int8Result:
    batch: int
    rows: list[Int8Row] = field(default_factory=list)
    seconds: float = 0.0

    def targets(self) -> list[Target]:
        out = []
        for row in self.rows:
            why = row.error or ""
            out.append(
                Target(
                    "int8",
                    f"{row.model}: INT8 / float32 speed at batch 1",
                    row.speedup_b1,
                    TARGET_INT8_SPEEDUP,
                    ">=",
                    "x",
                    why or row.profile or "",
                )
            )
            out.append(
                Target(
                    "int8",
                    f"{row.model}: INT8 / float32 throughput at batch {self.batch}",
                    row.speedup_batch,
                    TARGET_INT8_SPEEDUP,
                    ">=",
                    "x",
                    why,
                )
            )
            out.append(
                Target(
                    "int8",
                    f"{row.model}: test top-1 lost by INT8",
                    -row.top1_change,
                    TARGET_INT8_MAX_DROP,
                    "<=",
                    " points",
                    why,
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "seconds": self.seconds, "rows": [r.to_dict() for r in self.rows]}


def measure(model: str, config: BenchConfig, repository: Path) -> Int8Row:
    card, fp32_path = model_file(repository, model, "fp32")
    version = card.versions[card.latest_version]
    shape = list(card.input.shape)
    row = Int8Row(model, shape, fp32_top1=version.verification.top1("fp32"))
    int8 = version.variants.get("int8")
    if int8 is None or not int8.published:
        row.error = f"INT8 not published: {int8.reason if int8 else 'the build made none'}"
        return row
    row.int8_top1 = version.verification.top1("int8")
    _, int8_path = model_file(repository, model, "int8")
    sessions = {"fp32": bare_session(fp32_path), "int8": bare_session(int8_path)}
    rng = np.random.default_rng(config.seed)
    feeds = {
        "b1": rng.standard_normal((1, *shape), dtype=np.float32),
        "batch": rng.standard_normal((config.runtime_batch, *shape), dtype=np.float32),
    }

    def call(precision: str, x: np.ndarray):
        session = sessions[precision]
        feed = {session.get_inputs()[0].name: x}
        return lambda: session.run(None, feed)

    timed = interleave(
        {f"{p}_{k}": call(p, x) for k, x in feeds.items() for p in sessions},
        rounds=config.rounds,
        block_s=config.block_s,
        max_calls=config.max_calls,
        warmup_calls=config.warmup_calls,
        max_seconds=config.comparison_seconds,
    )
    row.fp32_b1_ms = timed["fp32_b1"].median_s * 1e3
    row.int8_b1_ms = timed["int8_b1"].median_s * 1e3
    row.speedup_b1 = row.fp32_b1_ms / row.int8_b1_ms
    ratios = round_ratios(timed["fp32_b1"], timed["int8_b1"])
    row.speedup_b1_range = (min(ratios), max(ratios))
    row.fp32_batch_ips = config.runtime_batch / timed["fp32_batch"].median_s
    row.int8_batch_ips = config.runtime_batch / timed["int8_batch"].median_s
    row.speedup_batch = row.int8_batch_ips / row.fp32_batch_ips
    if config.profile_missed and row.speedup_b1 < TARGET_INT8_SPEEDUP:
        row.profile = batch1_profile(fp32_path, int8_path, feeds["b1"], config, model)
    return row


def batch1_profile(fp32: Path, int8: Path, x: np.ndarray, config: BenchConfig, model: str) -> str:
    """Where each file spends a batch-1 run (ONNX Runtime's profiler): convolutions against the rest."""
    import onnx

    from .runtime import ort_profile

    split = {}
    for label, path in (("float32", fp32), ("INT8", int8)):
        ops = ort_profile(path, x, config.threads, config.work_dir / "profiles" / f"{model}-{label}", calls=30)[
            "ops_us"
        ]
        conv = sum(us for op, us in ops.items() if "Conv" in op) / 1e3
        nodes = len(onnx.load(str(path), load_external_data=False).graph.node)
        split[label] = (conv, sum(ops.values()) / 1e3 - conv, nodes)
    (c32, o32, n32), (c8, o8, n8) = split["float32"], split["INT8"]
    return (
        f"profiles at batch 1: the convolutions take {c32:.2f} ms in float32 and {c8:.2f} ms in INT8 (only "
        f"{c32 / c8:.2f}x faster: at a {x.shape[2]}x{x.shape[3]} input the feature maps are a few pixels wide, "
        "matrix products too small for the INT8 kernels' advantage to show); the other operators take "
        f"{o32:.2f} ms and {o8:.2f} ms ({n32} nodes against {n8}: "
        f"quantize, dequantize and quantized adds). At batch {config.runtime_batch} the same files are "
        "compared again, where the arithmetic dominates"
    )


def run(config: BenchConfig, repository: Path) -> Int8Result:
    result = Int8Result(config.runtime_batch)
    start = time.perf_counter()
    for model in config.int8_models:
        log.info("int8: %s", model)
        try:
            row = measure(model, config, repository)
        except Exception as exc:  # a model missing from the repository must not lose the others
            log.exception("int8: %s failed", model)
            row = Int8Row(model, [], error=f"{type(exc).__name__}: {exc}")
        else:
            log.info(
                "int8: %s batch 1 fp32 %.2f ms int8 %.2f ms (%.2fx), top-1 %s -> %s",
                model,
                row.fp32_b1_ms,
                row.int8_b1_ms,
                row.speedup_b1,
                row.fp32_top1,
                row.int8_top1,
            )
        result.rows.append(row)
    result.seconds = time.perf_counter() - start
    return result
