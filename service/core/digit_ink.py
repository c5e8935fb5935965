"""A person's image of a digit as the digits data set's picture of one: the card's ``input.digits``.

The steps and their parameters are :class:`repository.DigitNormalization`'s (its docstring says what
each does); training does the same to its augmented digits with torch (``training.digit_ink``), and a
test holds the two to the same answers. Everything is a few small matrix products: about 1 ms for the
page's 280x280 canvas.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from repository import DigitNormalization

from .errors import InvalidInput

__all__ = ["bilinear_weights", "digit_ink", "ink_to_digits"]


def digit_ink(grey: np.ndarray, spec: DigitNormalization) -> np.ndarray:
    """(H, W) uint8 grey as ink in [0, 1], light on dark; a 422 error when there is no ink to see."""
    height, width = grey.shape
    k = max(1, round(spec.border * min(height, width)))
    border = np.concatenate([grey[:k].ravel(), grey[-k:].ravel(), grey[:, :k].ravel(), grey[:, -k:].ravel()])
    if spec.polarity == "auto" and _quantile(border, 0.5) > 0.5:
        grey, border = 255 - grey, 255 - border
    paper, ink = _quantile(border, 0.5), _quantile(grey, 0.995)
    if ink - paper < 0.1:
        raise InvalidInput(
            "the image has no ink to read: it is one shade (draw or photograph a digit, darker or lighter "
            "than its background)",
            details={"background": round(paper, 3), "ink": round(ink, 3)},
        )
    return np.clip((grey.astype(np.float32) / 255.0 - paper) / (ink - paper), 0.0, 1.0)


def _quantile(levels: np.ndarray, q: float) -> float:
    """The ``q`` quantile of 8-bit ``levels`` in [0, 1], as ``np.percentile`` gives it, from their histogram.

    The two order statistics around the quantile come from the cumulative histogram (a sort of the
    image's pixels costs several times more) and are interpolated by numpy itself, so that the result
    is to the bit what a client's ``np.percentile`` (the page's snippet) computes.
    """
    cumulative = np.cumsum(np.bincount(levels.ravel(), minlength=256))
    position = q * (int(cumulative[-1]) - 1)
    below = int(np.floor(position))
    pair = np.searchsorted(cumulative, [below, below + 1], side="right").astype(np.float64)
    return float(np.percentile(pair, 100.0 * (position - below))) / 255.0


def ink_to_digits(ink: np.ndarray, spec: DigitNormalization) -> np.ndarray:
    """(H, W) ink as the data set's (resolution, resolution) values in [0, 1]."""
    inked = ink > spec.threshold
    if not inked.any():
        raise InvalidInput("the image has no ink to read: nothing stands out from its background")
    bitmap = _fit(inked, spec.frame)
    radius = int(np.clip(np.round((spec.stroke_width - _stroke_width(bitmap)) / 2), 0, spec.max_thickening))
    if radius:
        bitmap = _fit(_dilate(bitmap, radius), spec.frame)
    block = _blocks(spec.frame, spec.resolution)
    return block @ bitmap.astype(np.float32) @ block.T


@lru_cache(maxsize=4)
def _blocks(frame: int, resolution: int) -> np.ndarray:
    """(resolution, frame): each block's share of the frame's pixels (the same for every image)."""
    return _area_weights(0, frame, frame, resolution)


def _fit(inked: np.ndarray, frame: int) -> np.ndarray:
    """The bounding box of ``inked``, centred in a square of its longer side, resampled to ``frame`` and thresholded."""
    rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    top, left = int(rows[0]), int(cols[0])
    box_height, box_width = int(rows[-1]) + 1 - top, int(cols[-1]) + 1 - left
    side = max(box_height, box_width)
    ys = _area_weights(top - (side - box_height) // 2, side, inked.shape[0], frame)
    xs = _area_weights(left - (side - box_width) // 2, side, inked.shape[1], frame)
    return ys @ inked.astype(np.float32) @ xs.T > 0.5


def _area_weights(start: int, side: int, length: int, size: int) -> np.ndarray:
    """(size, length): each output pixel the mean of its share of ``[start, start + side)`` of the input.

    Input pixels outside ``[0, length)`` count as blank (the square around a narrow box reaches past
    the image).
    """
    scale = side / size
    low = start + np.arange(size)[:, None] * scale
    pixel = np.arange(length)[None, :]
    overlap = np.minimum(low + scale, pixel + 1) - np.maximum(low, pixel)
    return (np.clip(overlap, 0.0, None) / scale).astype(np.float32)


def _stroke_width(bitmap: np.ndarray) -> float:
    """Twice the inked area over its perimeter: a stroke's width, for strokes much longer than wide."""
    padded = np.pad(bitmap, 1).astype(np.int8)
    perimeter = np.abs(np.diff(padded, axis=0)).sum() + np.abs(np.diff(padded, axis=1)).sum()
    return 2.0 * float(bitmap.sum()) / max(int(perimeter), 1)


def _disk(radius: int) -> np.ndarray:
    """The round pen of ``radius`` pixels as a (2r+1)^2 boolean footprint."""
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return y * y + x * x <= radius * radius + radius


def _dilate(bitmap: np.ndarray, radius: int) -> np.ndarray:
    """``bitmap`` padded by ``radius`` and drawn over with the round pen."""
    padded = np.pad(bitmap, radius)
    out = np.zeros_like(padded)
    height, width = padded.shape
    for dy, dx in np.argwhere(_disk(radius)) - radius:
        out[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] |= padded[
            max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
        ]
    return out


@lru_cache(maxsize=16)
def bilinear_weights(length: int, size: int) -> np.ndarray:
    """(size, length) bilinear resize weights: half-pixel centres, clamped at the edges (torch's default)."""
    source = np.maximum((np.arange(size) + 0.5) * length / size - 0.5, 0.0)
    below = np.floor(source).astype(int)
    above = np.minimum(below + 1, length - 1)
    frac = (source - below).astype(np.float32)
    weights = np.zeros((size, length), np.float32)
    np.add.at(weights, (np.arange(size), below), 1.0 - frac)
    np.add.at(weights, (np.arange(size), above), frac)
    return weights
