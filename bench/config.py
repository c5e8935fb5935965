"""What one benchmark run does: :class:`BenchConfig`, with a full and a ``--quick`` preset.

Every loop of the harness is bounded twice, by a count and by seconds, so a slow or
overloaded machine makes a run less precise, never endless.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.recipes import DEFAULT_SET

__all__ = ["BENCHMARKS", "DEFAULT_RUNTIME_MODELS", "OLD_CONFIGURATION", "BenchConfig"]

BENCHMARKS = ("runtime", "overhead", "batching", "int8", "startup", "workers", "protocols", "handwriting")

# The service as it was before multi-process serving and the inference fast path (issue 16): one
# process with every usable CPU as ONNX Runtime threads, spinning within a run, every request through
# FastAPI's routing and dependency injection, and logged, batches formed by Triton's rules alone. The
# batching benchmark measures it side by side with the new defaults.
OLD_CONFIGURATION = {
    "workers": 1,
    "fast_path": False,
    "access_log": True,
    "ort_spinning": True,
    "batch_regroup": False,
}

# The networks `make repository` builds (training.recipes imports nothing heavy: no torch).
DEFAULT_RUNTIME_MODELS = DEFAULT_SET


def _default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class BenchConfig:
    """Sizes and bounds of a run. :meth:`full` is ``make bench``; :meth:`tiny` is ``--quick`` and the test.

    ``rounds`` is how many times each comparison alternates its configurations; a timed
    ``block_s`` (at most ``max_calls`` calls) is one configuration's turn in a round.
    """

    benchmarks: tuple[str, ...] = BENCHMARKS
    quick: bool = False
    repository: Path | None = None
    out: Path = Path("docs/benchmarks.md")
    img_dir: Path | None = None  # default: <out's folder>/img
    json_out: Path | None = None
    work_dir: Path = Path("build/bench")
    threads: int = field(default_factory=_default_threads)
    seed: int = 0

    # 1. runtime
    runtime_models: tuple[str, ...] = DEFAULT_RUNTIME_MODELS
    runtime_threads: tuple[int, ...] | None = None  # default: 1 and every usable core
    runtime_batch: int = 32
    rounds: int = 5
    block_s: float = 0.3
    max_calls: int = 200
    warmup_calls: int = 3
    comparison_seconds: float = 30.0  # one comparison stops adding rounds after this (at least 2 rounds)
    profile_missed: bool = True  # ONNX Runtime + PyTorch profiles of the networks under the target

    # 2. overhead
    overhead_models: tuple[str, ...] = ("lenet5",)
    overhead_requests: int = 300
    overhead_seconds: float = 20.0

    # 3. batching
    batching_models: tuple[str, ...] = ("lenet5", "resnet50")
    concurrency: tuple[int, ...] = (1, 8, 32, 64)
    batching_payloads: tuple[str, ...] = ("json", "v2-binary")
    batching_rounds: int = 3
    batching_requests: int = 3000  # per (model, mode, concurrency, round), at most: a p99 from thousands
    batching_seconds: float = 4.0  # per (model, mode, concurrency, round), at most
    healthz_interval_s: float = 0.02
    answers: int = 10  # distinct inputs per load, each with its own top class: every answer is checked

    # 4. int8
    int8_models: tuple[str, ...] = ("resnet50", "vgg16")

    # 5. start-up
    startup_repeats: int = 3
    startup_timeout_s: float = 300.0

    # 6. workers: the same load against 1, 2, 4, 8 worker processes (those the machine has CPUs for)
    workers: tuple[int, ...] = (1, 2, 4, 8)
    workers_loads: tuple[tuple[str, int], ...] = (("lenet5", 64), ("resnet50", 32))  # (model, concurrency), v2 binary

    # 7. protocols: gRPC (unary and stream) beside HTTP v2 binary, one server, alternating
    protocol_loads: tuple[tuple[str, int], ...] = (("lenet5", 64), ("resnet50", 32))  # (model, concurrency)

    # 8. handwriting: drawings of each digit in each polarity (export.handwriting), through /predict
    handwriting_per_digit: int = 20

    server_start_timeout_s: float = 300.0

    @classmethod
    def full(cls, **changes: Any) -> BenchConfig:
        return cls(**changes)

    @classmethod
    def tiny(cls, **changes: Any) -> BenchConfig:
        """Seconds, not minutes: enough to exercise every code path and produce every number."""
        preset = {
            "quick": True,
            "runtime_models": ("lenet5",),
            "runtime_batch": 4,
            "rounds": 2,
            "block_s": 0.02,
            "max_calls": 20,
            "warmup_calls": 1,
            "profile_missed": False,
            "overhead_requests": 20,
            "overhead_seconds": 5.0,
            "batching_models": ("lenet5",),
            "concurrency": (1, 4),
            "batching_rounds": 1,
            # Enough that a run outlasts a few of the server's loop-lag samples (one per 25 ms), even at 5,000/s.
            "batching_requests": 200,
            "batching_seconds": 2.0,
            "healthz_interval_s": 0.02,
            "int8_models": ("lenet5",),
            "startup_repeats": 1,
            "workers": (1, 2),
            "workers_loads": (("lenet5", 4),),
            "protocol_loads": (("lenet5", 4),),
            "handwriting_per_digit": 2,
        }
        preset.update(changes)
        return cls(**preset)

    def replace(self, **changes: Any) -> BenchConfig:
        changes = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **changes) if changes else self

    @property
    def runtime_thread_counts(self) -> tuple[int, ...]:
        """1 thread (immune to other processes) and every usable core (how the server runs)."""
        if self.runtime_threads:
            return tuple(self.runtime_threads)
        return tuple(dict.fromkeys((1, self.threads)))

    @property
    def worker_counts(self) -> tuple[int, ...]:
        """The worker counts the machine has CPUs for (1 and 2 always: the first step of the curve)."""
        return tuple(w for w in self.workers if w <= max(2, self.threads))

    @property
    def images(self) -> Path:
        return self.img_dir if self.img_dir is not None else self.out.parent / "img"

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
            for k, v in dataclasses.asdict(self).items()
        }
