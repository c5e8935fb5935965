"""Step 1 of a build: reuse ``<checkpoints>/<name>/checkpoint.pt`` when it was trained the same way, else train it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .options import BuildOptions

__all__ = ["QUICK_TRAINING", "ensure_checkpoint"]

log = logging.getLogger(__name__)

# --quick: a moment of training per network; the card says "quick" and the models are not real.
# Small batches give BatchNorm's running statistics enough steps to settle in those few images.
QUICK_TRAINING: dict[str, Any] = {"epochs": 2, "limit_train": 256, "batch_size": 32}


def ensure_checkpoint(name: str, options: BuildOptions) -> Path:
    """``<checkpoints>/<name>/checkpoint.pt``, trained now unless the one there has the same recipe, data and seed."""
    from training.train import TrainConfig, train

    out = options.checkpoint_dir(name)
    checkpoint = out / "checkpoint.pt"
    recipe, overrides = _training(name, options)
    if _reusable(checkpoint, recipe, options):
        log.info("%s: reusing %s (same recipe, data and seed)", name, checkpoint)
        return checkpoint
    log.info("%s: training into %s%s", name, out, " (quick)" if options.quick else "")
    result = train(
        TrainConfig(
            model=name,
            data=options.data,
            out=out,
            seed=options.seed,
            quiet=not options.progress,
            last="none",
            threads=options.threads,
            **overrides,
        )
    )
    return result.checkpoint


def _training(name: str, options: BuildOptions) -> tuple[Any, dict[str, Any]]:
    """The recipe ``name`` trains with under ``options``, and the :class:`TrainConfig` overrides (quick)."""
    from training.train import TrainConfig

    overrides = dict(QUICK_TRAINING) if options.quick else {}
    recipe = TrainConfig(
        model=name, epochs=overrides.get("epochs"), batch_size=overrides.get("batch_size")
    ).resolve_recipe()
    return recipe, overrides


def _reusable(checkpoint: Path, recipe: Any, options: BuildOptions) -> bool:
    """Whether ``checkpoint`` was trained on this data, recipe and seed (a different one is kept, not reused)."""
    import torch

    from training.weights import WeightsError, read_checkpoint

    if not checkpoint.is_file():
        return False
    try:
        with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
            meta = read_checkpoint(checkpoint).meta
    except WeightsError as err:
        log.warning("%s: cannot reuse it (%s); training again", checkpoint, err)
        return False
    return (
        meta.dataset == options.data
        and meta.recipe.to_dict() == recipe.to_dict()
        and meta.metrics.get("seed", options.seed) == options.seed
    )
