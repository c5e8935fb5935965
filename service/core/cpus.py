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
PROC_CGROUP = Path("/proc/self/cgroup")


def _v2_limit(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _v2_folders(root: Path, proc_cgroup: Path) -> list[Path]:
    """The process's cgroup v2 folder (``0::/path`` in /proc/self/cgroup) and its ancestors up to ``root``:
    a quota set on any of them applies (a container's namespace shows its own cgroup as ``/``)."""
    try:
        path = next(line[3:] for line in proc_cgroup.read_text().splitlines() if line.startswith("0::"))
    except (OSError, StopIteration):
        path = "/"
    folder = root / path.strip("/")
    return [folder, *(p for p in folder.parents if p.is_relative_to(root))] if folder != root else [root]


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """CPUs' worth of time per period the cgroup allows (v2 ``cpu.max``, the lowest of the process's cgroup
    and its ancestors; else v1 ``cfs_quota_us``); None: no limit."""
    limits = [limit for folder in _v2_folders(root, proc_cgroup) if (limit := _v2_limit(folder)) is not None]
    if limits:
        return min(limits)
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


def usable_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """The CPUs this process may run on (affinity), capped by the cgroup's quota rounded up; at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root, proc_cgroup)
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
