"""Fixtures shared by every test suite.

``quick_repository`` is a real model repository (``lenet5`` and ``resnet18``, trained in
``--quick`` mode, exported, verified and published by ``export.build``) built once per test
session in a temporary folder. Tests must treat it as read-only: copy it (``shutil.copytree``)
before tampering with it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch

if TYPE_CHECKING:
    from export.options import BuildOptions

# No gRPC front end unless a test asks for one (on a port of its own): every server the tests start,
# in process or as `python -m service`, would otherwise bind 8001, and two at once cannot.
os.environ.setdefault("CNNSERVE_GRPC_PORT", "0")

QUICK_MODELS = ("lenet5", "resnet18")
# torch's thread count when the session started: every test starts from it (see torch_threads).
_TORCH_THREADS = torch.get_num_threads()


@pytest.fixture(autouse=True)
def torch_threads() -> None:
    """Each test starts with the session's torch thread count, whatever ran before it.

    ``training.train`` sets the count for its recipe (one thread for LeNet-5) and leaves it so;
    without this, a test's numerics (and its speed) would depend on which test ran before it.
    """
    torch.set_num_threads(_TORCH_THREADS)


def quick_options(repository: Path, checkpoints: Path, **changes: Any) -> BuildOptions:
    """The options the quick repository is built with (tests that rebuild it use them too).

    The accuracy gate of the variants is open (a drop of up to 100 points): a quick model is a
    moment of training, its INT8 and float16 accuracy against float32's differs by points from one
    machine to the next (the same LeNet-5's INT8 came out 0.0 points from float32 here and 2.2
    above it on another machine), and the service and benchmark tests need both variants served
    on every machine. The gate itself is tested in tests/export/test_build.py.
    """
    from export.options import BuildOptions
    from export.quantize import QuantizeOptions

    # One thread: on a shared 2-core machine, torch's and ONNX Runtime's thread pools spinning
    # against each other (and the other test worker) make the build several times slower.
    base: dict[str, Any] = {
        "models": list(QUICK_MODELS),
        "repository": repository,
        "checkpoints": checkpoints,
        "quick": True,
        "progress": False,
        "threads": 1,
        "quantize": QuantizeOptions(max_accuracy_drop=100.0),
    }
    return BuildOptions(**{**base, **changes})


def build_quick_repository(root: Path) -> Path:
    """Build (or find already built) the quick repository under ``root``; returns its path.

    The checkpoints it trained are in ``<root>/checkpoints`` (``repository.parent / "checkpoints"``).
    """
    from export.build import build

    repository = root / "model_repository"
    results = build(quick_options(repository, root / "checkpoints"))
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
