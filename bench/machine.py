"""The machine a run measured: CPU, cores, memory, load, library versions and the git commit."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["Machine", "describe_machine", "load_average", "memory_bandwidth_gbs"]


@dataclass(frozen=True)
class Machine:
    cpu_model: str
    logical_cpus: int
    usable_cpus: int
    memory_gib: float
    os: str
    python: str
    versions: dict[str, str]
    onnxruntime_providers: list[str]
    git_commit: str
    git_dirty: bool
    load_average: tuple[float, float, float]
    memory_bandwidth_gbs: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return float("nan")


def _git(*args: str, cwd: Path) -> str:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


@functools.cache
def memory_bandwidth_gbs(megabytes: int = 256, repeats: int = 3) -> float:
    """Read bandwidth of one core, GB/s: the best of ``repeats`` sums of a float32 array bigger than the caches."""
    import numpy as np

    data = np.ones(megabytes * 2**20 // 4, dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        data.sum()
        best = min(best, time.perf_counter() - start)
    return round(data.nbytes / best / 1e9, 1)


def load_average() -> tuple[float, float, float]:
    try:
        return tuple(round(v, 2) for v in os.getloadavg())  # type: ignore[return-value]
    except OSError:
        return (float("nan"),) * 3  # type: ignore[return-value]


def describe_machine(root: Path | None = None) -> Machine:
    root = root or Path(__file__).resolve().parent.parent
    try:
        import onnxruntime as ort

        providers = list(ort.get_available_providers())
    except ImportError:
        providers = []
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    dists = ("torch", "onnxruntime", "numpy", "fastapi", "uvicorn", "pydantic", "pillow", "httpx")
    return Machine(
        cpu_model=_cpu_model(),
        logical_cpus=os.cpu_count() or 1,
        usable_cpus=usable,
        memory_gib=_memory_gib(),
        os=f"{platform.system()} {platform.release()}",
        python=sys.version.split()[0],
        versions={d: _version(d) for d in dists},
        onnxruntime_providers=providers,
        git_commit=_git("rev-parse", "--short=12", "HEAD", cwd=root) or "unknown",
        git_dirty=bool(_git("status", "--porcelain", "--untracked-files=no", cwd=root)),
        load_average=load_average(),
        memory_bandwidth_gbs=memory_bandwidth_gbs(),
    )
