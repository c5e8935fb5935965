"""A group is ready when every expected worker is alive and has a model ready (its status file says so)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from service.core.model_manager import ModelState
from service.core.readiness import GroupReadiness, StatusFile, status_path


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_every_worker_must_be_ready(tmp_path: Path) -> None:
    readiness = GroupReadiness(tmp_path, 2)
    first = StatusFile(tmp_path, 0)
    first.publish([ModelState("a", "READY"), ModelState("b", "LOADING")])
    state = readiness.state()
    assert not state.ready and state.reason.startswith("1 of 2 workers ready")
    assert state.workers == [{"index": 0, "pid": os.getpid(), "ready": True}, {"index": 1, "pid": None, "ready": False}]
    assert state.models == {"a": "LOADING", "b": "LOADING"}  # worker 1 has not even listed them

    StatusFile(tmp_path, 1).publish([ModelState("a", "READY"), ModelState("b", "UNAVAILABLE")])
    state = readiness.state()
    assert state.ready and state.models == {"a": "READY", "b": "LOADING"}
    first.publish([ModelState("a", "READY"), ModelState("b", "UNAVAILABLE")])
    assert readiness.state().models == {"a": "READY", "b": "UNAVAILABLE"}


def test_a_dead_workers_file_does_not_count(tmp_path: Path) -> None:
    StatusFile(tmp_path, 0).publish([ModelState("a", "READY")])
    record = {"index": 1, "pid": _dead_pid(), "ready": True, "models": {"a": "READY"}}
    status_path(tmp_path, 1).write_text(json.dumps(record))
    state = GroupReadiness(tmp_path, 2).state()
    assert not state.ready and state.workers[1] == {"index": 1, "pid": None, "ready": False}
    status_path(tmp_path, 1).write_text("{ half-written")
    assert not GroupReadiness(tmp_path, 2).state().ready


def test_a_worker_with_no_model_ready_is_not_ready(tmp_path: Path) -> None:
    StatusFile(tmp_path, 0).publish([])
    assert not GroupReadiness(tmp_path, 1).state().ready
    StatusFile(tmp_path, 0).publish([ModelState("a", "UNAVAILABLE")])
    assert not GroupReadiness(tmp_path, 1).state().ready
