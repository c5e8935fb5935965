"""The digits data set's picture of a digit, and training that covers how people write.

scikit-learn's digits come from NIST's preprocessing: a digit's bitmap was fitted into a 32x32 frame
(its height filling it, its width in proportion, centred), and each 4x4 block's count of inked pixels
became one of 8x8 values. :func:`ink_to_digits` does the same to a batch of ink images; the service
does it to every image a digit model is sent (``repository.DigitNormalization``, the card's
``input.digits``), so a person's digit and a training digit reach the network in the same form.

:func:`handwriting_augment` is the batch augmentation of the recipes' ``augment="handwriting"``:
each training digit is redrawn as another hand would write it (slant, rotation, aspect ratio,
elastic bending, thinner or thicker strokes) and brought back to the data set's form by the same
steps. Nothing here trains on the handwriting check set (``export.handwriting``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from repository import DigitNormalization

__all__ = ["DIGITS", "WORK_SIZE", "digit_ink", "digits_input", "handwriting_augment", "ink_to_digits"]

DIGITS = DigitNormalization()  # what the cards of digit models declare, and what training matches

WORK_SIZE = 64  # the resolution a digit is redrawn at (8 pixels per cell of the data set)
# How far a redrawn digit strays, each drawn uniformly per digit (recipes.py has the trials behind them):
_KEEP = 0.5  # share of training digits left as the data set has them
_ROTATION = 10.0  # degrees either way
_SLANT = 0.3  # horizontal shear either way (x moves by up to 0.3 of y)
_ASPECT = (0.75, 1.1)  # width scale
_BEND = 0.04  # elastic bend: a smooth random displacement field, up to ~4% of the side
_SHRINK = 1.45  # the redrawn digit is drawn smaller, so that rotation and slant never cut it at the frame
_WIDTHS = (-2, -1, 0, 0, 1, 2, 3)  # stroke width changes in WORK_SIZE pixels (negative: thinner)


def digit_ink(grey: Tensor, spec: DigitNormalization = DIGITS) -> Tensor | None:
    """(H, W) grey in [0, 1] as ink in [0, 1], light on dark (the card's first two steps); ``None`` without ink."""
    k = max(1, round(spec.border * min(grey.shape)))
    border = torch.cat([grey[:k].flatten(), grey[-k:].flatten(), grey[:, :k].flatten(), grey[:, -k:].flatten()])
    paper = float(torch.quantile(border.double(), 0.5))
    if spec.polarity == "auto" and paper > 0.5:
        grey, paper = 1.0 - grey, 1.0 - paper
    ink = float(torch.quantile(grey.flatten().double(), 0.995))
    if ink - paper < 0.1:
        return None
    return ((grey - paper) / (ink - paper)).clamp(0.0, 1.0)


def digits_input(grey: Tensor, size: int, spec: DigitNormalization = DIGITS) -> Tensor | None:
    """(H, W) grey in [0, 1] as the data set's digit at ``size`` x ``size`` (before mean/std); ``None`` without ink."""
    ink = digit_ink(grey, spec)
    if ink is None or not (ink > spec.threshold).any():
        return None
    digits = ink_to_digits(ink[None, None], spec)
    return F.interpolate(digits, size=(size, size), mode="bilinear", align_corners=False)[0, 0]


def ink_to_digits(ink: Tensor, spec: DigitNormalization = DIGITS) -> Tensor:
    """(N, 1, H, W) ink in [0, 1] as the data set's (N, 1, resolution^2) picture of each digit, in [0, 1].

    The steps of :class:`repository.DigitNormalization` from its third on (the service's
    ``service.core.digit_ink``, batched): inked pixels are found; their bounding box, centred in a
    square of its longer side, is resampled to ``frame`` x ``frame``; thin strokes are thickened by a
    round pen and the ink fitted again; each block's share of inked pixels becomes one value. An
    image without ink comes back blank.
    """
    inked = (ink[:, 0] > spec.threshold).to(ink.dtype)
    bitmap = _fit(inked, spec.frame)
    radius = ((spec.stroke_width - _stroke_width(bitmap)) / 2).round().clamp(0, spec.max_thickening).long()
    for r in range(1, spec.max_thickening + 1):
        chosen = radius == r
        if chosen.any():
            bitmap[chosen] = _fit(_dilate(bitmap[chosen], r), spec.frame)
    block = _area_weights(torch.zeros(1), spec.frame, spec.frame, spec.resolution, ink.dtype)
    return (block @ bitmap @ block.transpose(1, 2))[:, None]


def _fit(inked: Tensor, frame: int) -> Tensor:
    """(N, H, W) 0/1: each bounding box, centred in a square of its longer side, resampled to ``frame``, thresholded."""
    top, bottom = _extent(inked.amax(dim=2))
    left, right = _extent(inked.amax(dim=1))
    side = torch.maximum(bottom - top, right - left).clamp(min=1)
    rows = _area_weights(
        top - torch.div(side - (bottom - top), 2, rounding_mode="floor"), side, inked.shape[1], frame, inked.dtype
    )
    cols = _area_weights(
        left - torch.div(side - (right - left), 2, rounding_mode="floor"), side, inked.shape[2], frame, inked.dtype
    )
    return ((rows @ inked @ cols.transpose(1, 2)) > 0.5).to(inked.dtype)


def _area_weights(start: Tensor, side: Tensor | int, length: int, size: int, dtype: torch.dtype) -> Tensor:
    """(N, size, length): each output pixel the mean of its share of ``[start, start + side)``; outside is blank."""
    scale = (torch.as_tensor(side, dtype=dtype) / size).reshape(-1, 1, 1)
    low = start.to(dtype).reshape(-1, 1, 1) + torch.arange(size, dtype=dtype)[None, :, None] * scale
    pixel = torch.arange(length, dtype=dtype)[None, None, :]
    overlap = torch.minimum(low + scale, pixel + 1) - torch.maximum(low, pixel)
    return overlap.clamp(min=0) / scale


def _extent(inked: Tensor) -> tuple[Tensor, Tensor]:
    """First and one-past-last inked index of each row of ``inked`` (N, L); the whole length when none is."""
    length = inked.shape[1]
    index = torch.arange(length)
    any_ink = inked.amax(dim=1) > 0
    first = torch.where(inked > 0, index, length).amin(dim=1)
    last = torch.where(inked > 0, index, -1).amax(dim=1) + 1
    return torch.where(any_ink, first, 0), torch.where(any_ink, last, length)


def _stroke_width(bitmap: Tensor) -> Tensor:
    """Twice each image's inked area over its perimeter."""
    padded = F.pad(bitmap, (1, 1, 1, 1))
    perimeter = padded.diff(dim=1).abs().sum(dim=(1, 2)) + padded.diff(dim=2).abs().sum(dim=(1, 2))
    return 2 * bitmap.sum(dim=(1, 2)) / perimeter.clamp(min=1)


def _dilate(bitmap: Tensor, radius: int) -> Tensor:
    """(N, H, W) 0/1 padded by ``radius`` and drawn over with a round pen of that radius."""
    y, x = torch.meshgrid(torch.arange(-radius, radius + 1), torch.arange(-radius, radius + 1), indexing="ij")
    pen = (y * y + x * x <= radius * radius + radius).to(bitmap.dtype)[None, None]
    padded = F.pad(bitmap[:, None], (radius,) * 4)
    return (F.conv2d(padded, pen, padding=radius)[:, 0] > 0.5).to(bitmap.dtype)


def handwriting_augment(
    x: Tensor, generator: torch.Generator, shard: tuple[int, int], *, mean: float, std: float
) -> Tensor:
    """Redraw each digit of a normalised (N, C, S, S) batch as another hand would, in the data set's form.

    The draws are made for the global batch and sliced by ``shard=(rank, world)``, so a distributed
    run augments as a single process does.
    """
    rank, world = shard
    n, channels, size, _ = x.shape
    draws = torch.rand(n * world, 9, generator=generator)[rank::world]
    ink = F.interpolate((x[:, :1] * std + mean).clamp(0, 1), size=(WORK_SIZE, WORK_SIZE), mode="bilinear")
    redrawn = _restroke(_distort(ink, draws, generator, shard), draws[:, 8])
    digits = ink_to_digits(redrawn)
    keep = (draws[:, 7] < _KEEP) | (digits.amax(dim=(1, 2, 3)) == 0)
    pixels = F.interpolate(digits, size=(size, size), mode="bilinear", align_corners=False)
    out = torch.where(keep[:, None, None, None], x[:, :1], (pixels - mean) / std)
    return out.expand(-1, channels, -1, -1) if channels > 1 else out


def _distort(ink: Tensor, draws: Tensor, generator: torch.Generator, shard: tuple[int, int]) -> Tensor:
    """Slant, rotation, aspect ratio and a smooth elastic bend, shrunk to stay inside the frame."""
    angle = (draws[:, 0] * 2 - 1) * math.radians(_ROTATION)
    slant = (draws[:, 1] * 2 - 1) * _SLANT
    aspect = _ASPECT[0] + draws[:, 2] * (_ASPECT[1] - _ASPECT[0])
    cos, sin, zoom = torch.cos(angle), torch.sin(angle), _SHRINK
    # Output -> input coordinates: the inverse of scale-x(aspect), shear(slant), rotate(angle), shrink.
    theta = torch.zeros(ink.shape[0], 2, 3)
    theta[:, 0, 0] = zoom * (cos + slant * sin) / aspect
    theta[:, 0, 1] = zoom * (sin - slant * cos) / aspect
    theta[:, 1, 0] = zoom * -sin
    theta[:, 1, 1] = zoom * cos
    grid = F.affine_grid(theta, list(ink.shape), align_corners=False)
    rank, world = shard
    bend = torch.randn(ink.shape[0] * world, 2, 4, 4, generator=generator)[rank::world] * draws[:, 3, None, None, None]
    bend = F.interpolate(bend * _BEND, size=ink.shape[-2:], mode="bicubic", align_corners=False)
    return F.grid_sample(ink, grid + bend.permute(0, 2, 3, 1), mode="bilinear", align_corners=False)


def _restroke(ink: Tensor, draw: Tensor) -> Tensor:
    """Each digit's strokes made thinner (erosion) or thicker (dilation) by a drawn number of pixels."""
    change = torch.tensor(_WIDTHS)[(draw * len(_WIDTHS)).long().clamp(max=len(_WIDTHS) - 1)]
    out = ink.clone()
    for pixels in set(_WIDTHS) - {0}:
        k = 2 * abs(pixels) + 1
        if pixels > 0:
            changed = F.max_pool2d(ink, k, stride=1, padding=abs(pixels))
        else:
            changed = -F.max_pool2d(-ink, k, stride=1, padding=abs(pixels))
        out = torch.where((change == pixels)[:, None, None, None], changed, out)
    return out
