"""Readiness of the service: of this process, or of every worker of a group.

One process (``create_app`` alone, or ``CNNSERVE_WORKERS=1``) is ready when one of its models is.
In a group (``python -m service`` with several workers, :mod:`service.process.supervisor`) each worker
writes its models' states to its own status file in the group's private folder whenever they
change, and whichever worker answers ``/readyz`` or ``/v2/health/ready`` reads them all: the
service is ready when every expected worker is alive and has a model ready. A worker that died
has no file (the supervisor removes it) or one whose process is gone; either way it is not ready.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model_manager import LOADING, READY, UNAVAILABLE, ModelManager, ModelState, ModelStatus

__all__ = ["GroupReadiness", "LocalReadiness", "ReadyState", "StatusFile", "WorkerGroup", "status_path"]


@dataclass(frozen=True)
class WorkerGroup:
    """What a worker knows of its group: its place in it and the supervisor's private folder."""

    index: int
    size: int
    directory: Path
    replacement: bool = False  # it replaces a worker that died: it takes connections once its models are loaded

    @property
    def status_dir(self) -> Path:
        return self.directory / "status"

    @property
    def metrics_dir(self) -> Path:
        return self.directory / "metrics"


@dataclass(frozen=True)
class ReadyState:
    ready: bool
    models: dict[str, ModelStatus]
    reason: str = "no model is ready yet"
    workers: list[dict[str, Any]] | None = None  # in a group: each worker's index, pid and readiness


class LocalReadiness:
    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager

    def state(self) -> ReadyState:
        return ReadyState(self._manager.ready, {s.name: s.status for s in self._manager.states()})


def status_path(directory: Path, index: int) -> Path:
    return directory / f"worker-{index}.json"


class StatusFile:
    """One worker's published status: its pid and its models' states, replaced atomically."""

    def __init__(self, directory: Path, index: int) -> None:
        self.path = status_path(directory, index)
        self._index = index

    def publish(self, states: Sequence[ModelState]) -> None:
        models = {s.name: s.status for s in states}
        record = {"index": self._index, "pid": os.getpid(), "ready": READY in models.values(), "models": models}
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(record))
        partial.replace(self.path)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def _combined(statuses: Sequence[ModelStatus | None]) -> ModelStatus:
    """A model's state over the workers: READY only if every worker serves it; loading if any still loads it."""
    if all(s == READY for s in statuses):
        return READY
    return LOADING if any(s in (LOADING, None) for s in statuses) else UNAVAILABLE


class GroupReadiness:
    def __init__(self, directory: Path, size: int) -> None:
        self._directory = directory
        self._size = size

    def _read(self, index: int) -> dict[str, Any] | None:
        try:
            record = json.loads(status_path(self._directory, index).read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and _alive(int(record.get("pid", 0))) else None

    def state(self) -> ReadyState:
        records = [self._read(i) for i in range(self._size)]
        workers = [
            {"index": i, "pid": r["pid"] if r else None, "ready": bool(r and r.get("ready"))}
            for i, r in enumerate(records)
        ]
        names = sorted({name for r in records if r for name in r.get("models", {})})
        models = {n: _combined([r.get("models", {}).get(n) if r else None for r in records]) for n in names}
        ready_count = sum(w["ready"] for w in workers)
        return ReadyState(
            ready_count == self._size,
            models,
            f"{ready_count} of {self._size} workers ready (each needs a model ready)",
            workers,
        )
