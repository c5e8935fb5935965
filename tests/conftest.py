"""Fixtures shared by every test suite.

``quick_repository`` is a real model repository (``lenet5`` and ``resnet18``, trained in
``--quick`` mode, exported, verified and published by ``export.build``) built once per test
session in a temporary folder. Tests must treat it as read-only: copy it (``shutil.copytree``)
before tampering with it.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

QUICK_MODELS = ("lenet5", "resnet18")


def build_quick_repository(root: Path) -> Path:
    """Build (or find already built) the quick repository under ``root``; returns its path.

    The checkpoints it trained are in ``<root>/checkpoints`` (``repository.parent / "checkpoints"``).
    """
    from export.build import BuildOptions, build

    repository = root / "model_repository"
    # One thread: on a shared 2-core machine, torch's and ONNX Runtime's thread pools spinning
    # against each other (and the other test worker) make the build several times slower.
    results = build(
        BuildOptions(
            models=list(QUICK_MODELS),
            repository=repository,
            quick=True,
            checkpoints=root / "checkpoints",
            progress=False,
            threads=1,
        )
    )
    failed = [f"{r.name}: {r.message}" for r in results if not r.ok]
    if failed:
        raise RuntimeError("the quick repository did not build: " + "; ".join(failed))
    return repository


@pytest.fixture(scope="session")
def quick_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small published repository holding ``lenet5`` and ``resnet18``, quick-trained. Read-only."""
    base = tmp_path_factory.getbasetemp()
    # Under pytest-xdist each worker has its own basetemp below a shared parent: build once for
    # all of them, the first worker under the lock, the others reuse it (build does no work then).
    shared = base.parent if base.name.startswith("popen-gw") else base
    root = shared / "quick-repository"
    root.mkdir(exist_ok=True)
    with open(shared / "quick-repository.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return build_quick_repository(root)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
