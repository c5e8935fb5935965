"""Pillow/torch transforms (no torchvision): sizes, ranges, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from training.transforms import (
    CenterCrop,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
    eval_transform,
    random_affine,
    train_transform,
)


def _image(w: int = 40, h: int = 30, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(1)
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


def test_resize_keeps_aspect_and_center_crop_takes_the_middle():
    img = _image(40, 30)
    assert Resize(15)(img).size == (20, 15)
    assert Resize(20)(_image(30, 40)).size == (20, 27)
    crop = CenterCrop(10)(img)
    assert crop.size == (10, 10)
    assert np.array_equal(np.asarray(crop), np.asarray(img)[10:20, 15:25])


def test_random_resized_crop_is_seeded_and_in_bounds():
    rrc = RandomResizedCrop(16)
    torch.manual_seed(3)
    boxes = [rrc.box(40, 30) for _ in range(50)]
    assert all(0 <= left < r <= 40 and 0 <= t < b <= 30 for left, t, r, b in boxes)
    torch.manual_seed(3)
    assert boxes == [rrc.box(40, 30) for _ in range(50)]
    assert rrc(_image()).size == (16, 16)


def test_flip_and_tensor_conversion():
    img = _image(6, 4)
    flip = RandomHorizontalFlip(p=1.0)(img)
    assert np.array_equal(np.asarray(flip), np.asarray(img)[:, ::-1])
    x = ToTensor()(img)
    assert x.shape == (3, 4, 6) and x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1
    assert ToTensor()(_image(6, 4, "L")).shape == (1, 4, 6)
    n = Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))(x)
    assert torch.allclose(n, x * 2 - 1)
    with pytest.raises(ValueError, match="std must be > 0"):
        Normalize((0.5,), (0.0,))


def test_pipelines_give_the_training_size():
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    assert train_transform(24, mean, std)(_image()).shape == (3, 24, 24)
    assert eval_transform(24, mean, std)(_image()).shape == (3, 24, 24)
    with pytest.raises(ValueError, match="crop_pct"):
        eval_transform(24, mean, std, crop_pct=1.5)


def test_random_affine_identity_fill_and_shards():
    x = torch.randn(8, 1, 12, 12)
    same = random_affine(x, degrees=0, scale=(1, 1), translate=0, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(same, x, atol=1e-5)
    blank = torch.full((4, 3, 12, 12), -0.9)
    assert torch.allclose(random_affine(blank, fill=-0.9, generator=torch.Generator().manual_seed(1)), blank, atol=1e-5)
    # Two shards of a global batch get the draws a single process gives that batch.
    whole = random_affine(x, generator=torch.Generator().manual_seed(2))
    for rank in (0, 1):
        part = random_affine(x[rank::2], generator=torch.Generator().manual_seed(2), shard=(rank, 2))
        assert torch.allclose(part, whole[rank::2], atol=1e-6)
