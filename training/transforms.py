"""Image transforms with Pillow, numpy and torch (no torchvision), after torchvision's ``transforms``.

The training pipeline is ``RandomResizedCrop`` + ``RandomHorizontalFlip``; evaluation is
``Resize`` of the shorter side to ``size / crop_pct`` + ``CenterCrop`` (the usual 0.875).
Random draws use torch's generator, so a seeded ``DataLoader`` (which seeds its workers)
gives the same crops run after run.

:func:`random_affine` is the batch counterpart for in-memory tensors (digits): one
``affine_grid``/``grid_sample`` for the whole batch instead of per-image Pillow work.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

__all__ = [
    "CenterCrop",
    "Compose",
    "Normalize",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "Resize",
    "ToTensor",
    "eval_transform",
    "random_affine",
    "train_transform",
]

_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}


def _resample(name: str) -> Image.Resampling:
    try:
        return _RESAMPLE[name]
    except KeyError:
        raise ValueError(f"interpolation must be one of {', '.join(_RESAMPLE)}, got {name!r}") from None


class Compose:
    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return f"Compose({', '.join(map(repr, self.transforms))})"


class Resize:
    """Resize the shorter side to ``size``, keeping the aspect ratio."""

    def __init__(self, size: int, interpolation: str = "bilinear") -> None:
        self.size, self.interpolation = size, interpolation
        self._resample = _resample(interpolation)

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        new = (self.size, max(1, round(h * self.size / w))) if w <= h else (max(1, round(w * self.size / h)), self.size)
        return img if new == (w, h) else img.resize(new, self._resample)

    def __repr__(self) -> str:
        return f"Resize({self.size}, {self.interpolation!r})"


class CenterCrop:
    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        left, top = round((w - self.size) / 2), round((h - self.size) / 2)
        # Pillow pads with black where the crop leaves the image, as torchvision does.
        return img.crop((left, top, left + self.size, top + self.size))

    def __repr__(self) -> str:
        return f"CenterCrop({self.size})"


class RandomResizedCrop:
    """A random area (``scale``) and aspect ratio (``ratio``) crop resized to ``size``x``size``.

    The sampling is torchvision's: ten tries at a crop that fits, then the centre crop of the
    allowed ratio.
    """

    def __init__(
        self,
        size: int,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        interpolation: str = "bilinear",
    ) -> None:
        if not (0 < scale[0] <= scale[1] <= 1):
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {scale}")
        if not (0 < ratio[0] <= ratio[1]):
            raise ValueError(f"ratio must satisfy 0 < min <= max, got {ratio}")
        self.size, self.scale, self.ratio, self.interpolation = size, scale, ratio, interpolation
        self._resample = _resample(interpolation)

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        area = width * height
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * torch.empty(1).uniform_(*self.scale).item()
            aspect = math.exp(torch.empty(1).uniform_(*log_ratio).item())
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (1,)).item())
                left = int(torch.randint(0, width - w + 1, (1,)).item())
                return left, top, left + w, top + h
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, round(width / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            w, h = round(height * self.ratio[1]), height
        else:
            w, h = width, height
        left, top = (width - w) // 2, (height - h) // 2
        return left, top, left + w, top + h

    def __call__(self, img: Image.Image) -> Image.Image:
        return img.resize((self.size, self.size), self._resample, box=self.box(*img.size))

    def __repr__(self) -> str:
        return f"RandomResizedCrop({self.size}, scale={self.scale}, ratio={self.ratio})"


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: Image.Image) -> Image.Image:
        if torch.rand(1).item() < self.p:
            return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return img

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class ToTensor:
    """A Pillow image to a float (C, H, W) tensor in [0, 1]."""

    def __call__(self, img: Image.Image) -> Tensor:
        array = np.asarray(img, dtype=np.float32) / 255.0
        if array.ndim == 2:
            array = array[:, :, None]
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be > 0, got {tuple(std)}")
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"


def train_transform(size: int, mean: Sequence[float], std: Sequence[float], interpolation: str = "bilinear") -> Compose:
    """Random resized crop and horizontal flip, then tensor and normalisation."""
    return Compose(
        [RandomResizedCrop(size, interpolation=interpolation), RandomHorizontalFlip(), ToTensor(), Normalize(mean, std)]
    )


def eval_transform(
    size: int, mean: Sequence[float], std: Sequence[float], crop_pct: float = 0.875, interpolation: str = "bilinear"
) -> Compose:
    """Shorter side to ``size / crop_pct``, centre crop ``size``, tensor and normalisation."""
    if not 0 < crop_pct <= 1:
        raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
    return Compose(
        [Resize(math.floor(size / crop_pct), interpolation), CenterCrop(size), ToTensor(), Normalize(mean, std)]
    )


def random_affine(
    x: Tensor,
    *,
    degrees: float = 10.0,
    scale: tuple[float, float] = (0.9, 1.1),
    translate: float = 0.1,
    fill: Tensor | float = 0.0,
    generator: torch.Generator | None = None,
    shard: tuple[int, int] = (0, 1),
) -> Tensor:
    """Rotate, scale and shift each image of a (N, C, H, W) batch by a random small amount.

    ``translate`` is a fraction of the side; ``fill`` is the (normalised) background value
    uncovered by the transform: for digits, the value of a blank pixel. ``shard=(rank, world)``
    says the batch is every ``world``-th image of a global batch from ``rank``: the draws are
    made for the global batch and sliced, so a distributed run augments as a single process.
    """
    rank, world = shard
    n = x.shape[0]
    rand = torch.rand(n * world, 4, generator=generator)[rank::world].to(x.device)
    angle = (rand[:, 0] * 2 - 1) * math.radians(degrees)
    zoom = scale[0] + rand[:, 1] * (scale[1] - scale[0])
    shift = (rand[:, 2:] * 2 - 1) * translate * 2  # grid coordinates span 2 per side
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    fill = torch.as_tensor(fill, dtype=x.dtype, device=x.device)
    if fill.ndim == 1:
        fill = fill.view(1, -1, 1, 1)
    # Shift by the fill value so that zero padding of grid_sample becomes padding with `fill`.
    return F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill
