"""What a training or fine-tuning run is asked for, and what it gives back (no torch).

:class:`TrainConfig` and :class:`FinetuneConfig` are what :func:`training.train.train` and
:func:`training.train.finetune` take; the fields left ``None`` take the network's recipe
(:mod:`training.recipes`) or an automatic choice. :class:`TrainResult` is what they return.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .recipes import Recipe, get_recipe

__all__ = ["FINETUNE_MODES", "LAST_POLICIES", "FinetuneConfig", "TrainConfig", "TrainResult"]

FINETUNE_MODES = ("feature-extract", "finetune", "scratch")
LAST_POLICIES = ("keep", "delete", "none")


@dataclass
class TrainConfig:
    """One training run. Fields left ``None`` take the network's recipe (or an automatic choice).

    ``limit_train`` keeps that many training images (quick runs, tests); ``stop_after`` ends the
    run after that epoch as if interrupted (``last.pt`` stays, ``--resume`` continues it).
    ``last`` is what happens to ``last.pt``: written after every epoch and kept (``"keep"``) or
    deleted at the end (``"delete"``), or never written (``"none"``: no ``--resume``, but no
    1.6 GB write per epoch of VGG with Adam either; the build retrains an interrupted network).
    """

    model: str
    data: str = "digits"
    out: Path | None = None
    epochs: int | None = None
    image_size: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    patience: int | None = None
    seed: int = 0
    resume: bool = False
    quiet: bool = False
    progress: bool | None = None
    limit_train: int | None = None
    device: str | None = None
    workers: int | None = None
    threads: int | None = None
    last: str = "keep"
    stop_after: int | None = None
    recipe: Recipe | None = None

    def __post_init__(self) -> None:
        if self.last not in LAST_POLICIES:
            raise ValueError(f"last must be one of {', '.join(LAST_POLICIES)}, got {self.last!r}")

    def resolve_recipe(self, base: Recipe | None = None) -> Recipe:
        recipe = self.recipe or base or get_recipe(self.model)
        return recipe.override(
            epochs=self.epochs,
            image_size=self.image_size,
            batch_size=self.batch_size,
            lr=self.lr,
            patience=self.patience,
        )

    def out_dir(self) -> Path:
        return Path(self.out) if self.out is not None else Path("runs") / self.model


@dataclass
class FinetuneConfig(TrainConfig):
    """Transfer learning: ``source`` is our checkpoint or a torchvision ``.pth`` (optional for scratch)."""

    source: Path | None = None
    mode: str = "finetune"

    def out_dir(self) -> Path:
        return Path(self.out) if self.out is not None else Path("runs") / f"{self.model}-{self.mode}"


@dataclass
class TrainResult:
    model: str
    out: Path
    checkpoint: Path
    metrics: dict[str, Any]
