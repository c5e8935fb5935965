"""Fixtures for the training-side tests: small generated image trees and quick LeNet-5 runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.train import TrainConfig, train

# Two images per class would leave nothing to split; six give 4/1/1 per class.
COLOURS = {"ants": (200, 40, 40), "bees": (40, 200, 40), "wasps": (40, 40, 200)}


def make_tree(root: Path, classes: dict[str, tuple[int, int, int]] | None = None, per_class: int = 6) -> Path:
    """``root/<class>/<n>.png|jpg``: noisy images of one colour per class, of varied sizes."""
    rng = np.random.default_rng(0)
    for name, colour in (classes or COLOURS).items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = 20 + 3 * i, 28 - 2 * i
            pixels = np.clip(np.array(colour) + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
            suffix = ".png" if i % 2 else ".jpg"
            Image.fromarray(pixels).save(folder / f"{i}{suffix}")
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "tree")


def quick_config(out: Path, **changes) -> TrainConfig:
    """LeNet-5 on a subset of the digits, a few seconds on two cores."""
    options = {"model": "lenet5", "data": "digits", "out": out, "epochs": 3, "limit_train": 192, "quiet": True}
    options.update(changes)
    return TrainConfig(**options)


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory: pytest.TempPathFactory):
    """A short LeNet-5 training run on the digits (module-scoped: shared by the tests of a file)."""
    return train(quick_config(tmp_path_factory.mktemp("lenet"), limit_train=None))
