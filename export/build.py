"""``python -m export build``: train (or reuse), export, verify and publish every model of the set.

For each network, fastest first (so that a server polling the repository can serve LeNet-5
within a couple of minutes while the rest is still training):

1. **checkpoint** - reuse ``<checkpoints>/<name>/checkpoint.pt`` when its metadata shows the
   same recipe, data and seed, else train it (``--quick`` checkpoints live in ``<checkpoints>/quick``;
   :mod:`export.checkpoints`);
2. **up to date?** - when the published latest version was made from a checkpoint with the
   same sha256 and with the same export options, there is nothing to do;
3. **export** the float32 ONNX model, **verify** it (``onnx.checker``, ONNX Runtime against
   PyTorch on random and real inputs, each layer's output tensor recorded and checked against
   PyTorch's hooks, the test accuracy again through ONNX Runtime; :mod:`export.pipeline`,
   :mod:`export.layers`);
4. **variants** - INT8 (static QDQ, calibrated on training images) and float16, each measured
   on the test set and published only within ``max_accuracy_drop`` points of float32
   (:mod:`export.variants`);
5. **publish** version N+1 (earlier versions stay), ``config.pbtxt`` and, last, the card.

:mod:`export.torchvision_import` runs steps 3-5 for a network with torchvision-format weights.
``--quick`` trains for a moment (tests, smoke runs) and says so in the card.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from repository import ModelCard, Repository, RepositoryError, sha256_file
from repository.publish import load_previous

from .checkpoints import ensure_checkpoint
from .jobs import job_from_checkpoint
from .onnx_export import ExportError
from .options import BuildOptions
from .pipeline import export_and_publish

# BuildOptions is re-exported: it is this command's input, imported with build() by its callers.
__all__ = ["BuildOptions", "BuildResult", "build", "build_one", "summary_line"]

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    name: str
    status: str  # "published", "up-to-date" or "failed"
    version: int | None = None
    message: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def build(options: BuildOptions = BuildOptions()) -> list[BuildResult]:
    """Build every model of ``options``; returns one :class:`BuildResult` per model (failures included)."""
    from tqdm import tqdm

    from training.recipes import DEFAULT_SET

    names = _ordered(options.models if options.models is not None else DEFAULT_SET, DEFAULT_SET)
    repository = Repository(options.repository)
    results = []
    log.info("building %d model(s) into %s%s", len(names), repository.root, " (quick)" if options.quick else "")
    bar = tqdm(names, desc="build", unit="model", file=sys.stderr, disable=not options.progress, dynamic_ncols=True)
    with _torch_threads(options.threads):
        for name in bar:
            results.append(_build_logged(name, repository, options, bar))
    bar.close()
    return results


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _build_logged(name: str, repository: Repository, options: BuildOptions, bar: Any) -> BuildResult:
    """:func:`build_one`, timed, with its steps on the progress bar; a failure is a result, not an exception."""
    started = time.perf_counter()

    def step(what: str) -> None:
        bar.set_postfix_str(f"{name}: {what}")
        log.info("%s: %s", name, what)

    try:
        result = build_one(name, repository, options, step)
    except (ExportError, RepositoryError, ValueError, KeyError, RuntimeError, OSError, ArithmeticError) as err:
        log.error("%s: failed: %s", name, err)
        log.debug("%s: traceback", name, exc_info=True)
        result = BuildResult(name, "failed", message=str(err))
    result.seconds = round(time.perf_counter() - started, 1)
    # DEBUG: the command prints each result itself (failures are logged above).
    log.debug(
        "%s: %s%s (%.1fs)", name, result.status, f" version {result.version}" if result.version else "", result.seconds
    )
    return result


def _ordered(names: Sequence[str], default_set: Sequence[str]) -> list[str]:
    """De-duplicated, in default-set order (fastest first), names outside the set last."""
    unique = list(dict.fromkeys(names))
    rank = {n: i for i, n in enumerate(default_set)}
    return sorted(unique, key=lambda n: (rank.get(n, len(rank)), unique.index(n)))


def build_one(
    name: str, repository: Repository, options: BuildOptions, step: Callable[[str], None] = lambda _: None
) -> BuildResult:
    """Steps 1-5 of the module docstring for one network."""
    import models

    models.get_model_info(name)  # an unknown name fails here, with the known names
    step("checkpoint")
    checkpoint = ensure_checkpoint(name, options)
    source_sha = sha256_file(checkpoint)
    previous = load_previous(repository, name)
    if not options.force and _up_to_date(repository, previous, source_sha, options):
        assert previous is not None
        return BuildResult(name, "up-to-date", previous.latest_version, "nothing changed")
    step("loading data")
    job = job_from_checkpoint(checkpoint, options, source_sha)
    version = export_and_publish(job, repository, options, step)
    return BuildResult(name, "published", version)


def _up_to_date(repository: Repository, previous: ModelCard | None, source_sha: str, options: BuildOptions) -> bool:
    if previous is None:
        return False
    latest = previous.versions[previous.latest_version]
    same = latest.training.source_sha256 == source_sha and latest.verification.export_options == options.export_key()
    if not same:
        return False
    problems = repository.check(previous.name, previous)
    if problems:
        log.warning("%s: the published files differ from the card (%s); publishing again", previous.name, problems[0])
        return False
    return True


def summary_line(results: Sequence[BuildResult]) -> str:
    counts = {s: sum(r.status == s for r in results) for s in ("published", "up-to-date", "failed")}
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "nothing to build"
