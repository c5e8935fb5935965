"""The CPUs the service may use (affinity and cgroup quota, never the host's count) and how it divides them."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from service.core.cpus import cgroup_cpu_limit, plan, usable_cpus


def _cgroup_v2(root: Path, cpu_max: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text(cpu_max + "\n")
    return root


def _cgroup_v1(root: Path, quota_us: int, period_us: int = 100_000) -> Path:
    (root / "cpu").mkdir(parents=True)
    (root / "cpu" / "cpu.cfs_quota_us").write_text(f"{quota_us}\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text(f"{period_us}\n")
    return root


@pytest.mark.parametrize(
    ("write", "limit"),
    [
        (lambda r: _cgroup_v2(r, "max 100000"), None),
        (lambda r: _cgroup_v2(r, "200000 100000"), 2.0),
        (lambda r: _cgroup_v2(r, "150000 100000"), 1.5),
        (lambda r: _cgroup_v1(r, -1), None),
        (lambda r: _cgroup_v1(r, 50_000), 0.5),
        (lambda r: r, None),  # no cgroup files at all (not Linux, or not mounted)
    ],
    ids=["v2-unlimited", "v2-2cpus", "v2-1.5cpus", "v1-unlimited", "v1-half", "none"],
)
def test_cgroup_cpu_limit(tmp_path: Path, write, limit: float | None) -> None:
    root = tmp_path / "cgroup"
    root.mkdir()
    assert cgroup_cpu_limit(write(root), tmp_path / "no-such-file") == limit


def test_a_quota_on_the_process_cgroup_or_an_ancestor_applies(tmp_path: Path) -> None:
    # systemd-run -p CPUQuota=150% python -m service: the quota is on the service's own cgroup,
    # and its slice may have a lower one.
    root = _cgroup_v2(tmp_path / "cgroup", "max 100000")
    own = _cgroup_v2(root / "system.slice" / "cnnserve.service", "150000 100000")
    proc = tmp_path / "cgroup-of-self"
    proc.write_text("0::/system.slice/cnnserve.service\n")
    assert cgroup_cpu_limit(root, proc) == 1.5
    _cgroup_v2(root / "system.slice", "100000 100000")
    assert cgroup_cpu_limit(root, proc) == 1.0
    (own / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(root, proc) == 1.0


def test_the_quota_caps_the_affinity_rounded_up(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    proc = tmp_path / "no-such-file"  # the cgroup namespace's root: "/"
    assert usable_cpus(tmp_path, proc) == affinity  # no quota: every CPU of the affinity
    assert usable_cpus(_cgroup_v2(tmp_path / "a", "50000 100000"), proc) == 1  # half a CPU still runs one worker
    assert usable_cpus(_cgroup_v2(tmp_path / "b", "150000 100000"), proc) == min(affinity, 2)
    assert usable_cpus(_cgroup_v2(tmp_path / "c", f"{100_000 * (affinity + 8)} 100000"), proc) == affinity


@pytest.mark.parametrize(
    ("cpus", "workers", "threads", "want"),
    [
        (2, 0, 0, (2, 1)),  # automatic: a worker per CPU, one ONNX Runtime thread each
        (16, 0, 0, (16, 1)),
        (16, 4, 0, (4, 4)),  # the CPUs divided among the workers given
        (16, 3, 0, (3, 5)),
        (2, 4, 0, (4, 1)),  # more workers than CPUs: never less than one thread
        (8, 2, 6, (2, 6)),  # a value given is kept
    ],
)
def test_plan_divides_the_cpus(cpus: int, workers: int, threads: int, want: tuple[int, int]) -> None:
    p = plan(workers, threads, cpus=cpus)
    assert (p.workers, p.intra_op_threads) == want and p.cpus == cpus
    if not threads:
        assert p.workers * p.intra_op_threads <= max(cpus, p.workers) and math.isfinite(p.intra_op_threads)
