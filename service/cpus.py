"""How many CPUs the service may really use, and how it splits them among workers and ONNX Runtime threads.

``os.cpu_count()`` is the host's count: in a container limited to 2 CPUs on a 64-core host it
says 64, and 64 ONNX Runtime threads (its default) on 2 CPUs' worth of time is the worst case of
oversubscription. What counts is the CPU affinity (``taskset``, Kubernetes' static CPU manager)
and the cgroup's CPU quota (``docker --cpus``, a Kubernetes CPU limit), whichever is smaller. A
fractional quota is rounded up: 1.5 CPUs serve better with two event loops than with one, which
could use at most one CPU.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuPlan", "cgroup_cpu_limit", "plan", "usable_cpus"]

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs' worth of time per period the cgroup allows (v2 ``cpu.max``, else v1 ``cfs_quota_us``); None: no limit."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


def usable_cpus(root: Path = CGROUP_ROOT) -> int:
    """The CPUs this process may run on (affinity), capped by the cgroup's quota rounded up; at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(1, cpus)


@dataclass(frozen=True)
class CpuPlan:
    cpus: int  # usable CPUs
    workers: int  # server processes
    intra_op_threads: int  # ONNX Runtime threads inside one operator, per worker


def plan(workers: int = 0, intra_op_threads: int = 0, cpus: int | None = None) -> CpuPlan:
    """Settings' 0 (automatic) made concrete: one worker per usable CPU, and the CPUs divided among the workers'
    ONNX Runtime threads so that workers x threads does not exceed them; a value given is kept."""
    cpus = usable_cpus() if cpus is None else cpus
    workers = workers or cpus
    return CpuPlan(cpus, workers, intra_op_threads or max(1, cpus // workers))
