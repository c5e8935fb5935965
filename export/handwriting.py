"""A handwriting check set: digits drawn as a person draws them, to judge the digit models on, never to train on.

Each digit is a few pen strokes (:data:`STROKES`: the common ways of writing it, a 1 with or without its
flag, a 4 open or closed, a 7 with or without its bar), traced as a hand would trace them:

* the path wobbles (smooth low-frequency noise on every point, not pixel noise);
* the whole digit is slanted, rotated, stretched to another aspect ratio, scaled and placed off centre;
* the pen is round, of a width from a fine liner to a marker;
* on the page's canvas (280 x 280, white on black), or as a photo of a note: dark ink on grey-white
  paper with uneven light and a little blur.

Nothing here is a font: the check set measures what a model makes of strokes, which a typeface would
not. The same seed always draws the same set.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from repository import InputSpec

__all__ = [
    "CANVAS",
    "CARD_PER_DIGIT",
    "POLARITIES",
    "STROKES",
    "HandwrittenDigit",
    "check_arrays",
    "handwritten_digits",
]

CANVAS = 280  # the page's drawing pad
CARD_PER_DIGIT = 20  # drawings of each digit in each polarity behind a card's ``verification.handwriting``
Polarity = Literal["light-on-dark", "dark-on-light"]
POLARITIES: tuple[Polarity, ...] = ("light-on-dark", "dark-on-light")
Point = tuple[float, float]


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, steps: int = 24) -> list[Point]:
    """Points of an elliptic arc in a unit box (y down), from ``start`` to ``end`` degrees (0: right, 90: down)."""
    angles = np.radians(np.linspace(start, end, steps))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


def _curve(*points: Point, steps: int = 16) -> list[Point]:
    """A quadratic Bezier through three points' control polygon (or a straight line through two)."""
    if len(points) == 2:
        return list(points)
    (x0, y0), (x1, y1), (x2, y2) = points
    t = np.linspace(0, 1, steps)
    return list(
        zip(
            (1 - t) ** 2 * x0 + 2 * (1 - t) * t * x1 + t**2 * x2,
            (1 - t) ** 2 * y0 + 2 * (1 - t) * t * y1 + t**2 * y2,
            strict=True,
        )
    )


# Per digit, the ways it is written; each a list of strokes, each stroke a path in a unit box (y down).
STROKES: dict[int, list[list[list[Point]]]] = {
    0: [[_arc(0.5, 0.5, 0.3, 0.42, 270, 635)], [_arc(0.5, 0.5, 0.26, 0.44, 250, 610)]],
    1: [
        [[(0.5, 0.08), (0.5, 0.92)]],
        [[(0.32, 0.28), (0.52, 0.08), (0.52, 0.92)]],
        [[(0.35, 0.25), (0.5, 0.08), (0.5, 0.92)], [(0.3, 0.92), (0.7, 0.92)]],
    ],
    2: [
        [[*_arc(0.5, 0.32, 0.27, 0.22, 195, 380), (0.2, 0.9), (0.82, 0.9)]],
        [_arc(0.48, 0.3, 0.26, 0.22, 200, 400) + _curve((0.7, 0.45), (0.3, 0.7), (0.2, 0.9)) + [(0.8, 0.88)]],
    ],
    3: [
        [_arc(0.48, 0.3, 0.26, 0.2, 200, 450) + _arc(0.48, 0.7, 0.3, 0.22, 270, 520)],
        [[(0.22, 0.1), (0.75, 0.1), (0.45, 0.42), *_arc(0.48, 0.68, 0.3, 0.24, 280, 520)]],
    ],
    4: [
        [[(0.66, 0.92), (0.66, 0.08), (0.15, 0.66), (0.85, 0.66)]],
        [[(0.25, 0.08), (0.18, 0.58), (0.86, 0.58)], [(0.66, 0.28), (0.66, 0.92)]],
    ],
    5: [
        [[(0.76, 0.1), (0.3, 0.1), (0.25, 0.46), *_arc(0.5, 0.66, 0.28, 0.24, 215, 490)]],
        [[(0.28, 0.1), (0.24, 0.46), *_arc(0.5, 0.66, 0.28, 0.24, 215, 490)], [(0.28, 0.1), (0.78, 0.1)]],
    ],
    6: [
        [_curve((0.7, 0.08), (0.22, 0.3), (0.23, 0.7)) + _arc(0.5, 0.68, 0.27, 0.23, 180, 540)],
        [_curve((0.62, 0.06), (0.28, 0.35), (0.26, 0.72)) + _arc(0.5, 0.7, 0.24, 0.2, 180, 520)],
    ],
    7: [[[(0.2, 0.1), (0.8, 0.1), (0.4, 0.92)]], [[(0.2, 0.1), (0.8, 0.1), (0.42, 0.92)], [(0.35, 0.5), (0.72, 0.5)]]],
    8: [
        [_arc(0.5, 0.29, 0.21, 0.19, 90, 450) + _arc(0.5, 0.7, 0.27, 0.22, 270, 630)],
        [_arc(0.5, 0.3, 0.2, 0.2, 0, 360) + _arc(0.5, 0.7, 0.25, 0.2, 0, 360)],
    ],
    9: [
        [[*_arc(0.5, 0.32, 0.25, 0.22, 0, 365), (0.74, 0.9)]],
        [_arc(0.48, 0.3, 0.24, 0.21, 10, 370) + _curve((0.72, 0.35), (0.7, 0.75), (0.45, 0.92))],
    ],
}


@dataclass(frozen=True)
class HandwrittenDigit:
    image: Image.Image  # greyscale, CANVAS x CANVAS
    label: int
    polarity: Polarity
    style: int  # which way of writing it (an index into STROKES[label])


def handwritten_digits(
    per_digit: int = 20, seed: int = 0, polarities: Sequence[Polarity] = POLARITIES
) -> list[HandwrittenDigit]:
    """``per_digit`` drawings of each digit in each polarity (its ways of writing it in turn), the same for a seed."""
    rng = np.random.default_rng(seed)
    drawn = []
    for polarity in polarities:
        for label, styles in STROKES.items():
            for n in range(per_digit):
                style = n % len(styles)
                drawn.append(HandwrittenDigit(_draw(styles[style], polarity, rng), label, polarity, style))
    return drawn


def _wobble(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Smooth displacement along the path: two slow waves per axis, as a hand's tremor and drift."""
    t = np.linspace(0, 1, len(points))[:, None]
    amplitude = rng.uniform(0.005, 0.03, (2, 2))
    frequency = rng.uniform(0.5, 2.5, (2, 2))
    phase = rng.uniform(0, 2 * np.pi, (2, 2))
    return points + sum(amplitude[k] * np.sin(2 * np.pi * frequency[k] * t + phase[k]) for k in range(2))


def _placement(rng: np.random.Generator) -> np.ndarray:
    """A 2x3 affine map from the unit box to canvas pixels: slant, rotation, aspect, size and position."""
    slant = rng.uniform(-0.35, 0.25)
    angle = math.radians(rng.uniform(-12, 12))
    height = rng.uniform(0.45, 0.85) * CANVAS
    width = height * rng.uniform(0.6, 1.15)
    centre = CANVAS / 2 + rng.uniform(-0.12, 0.12, 2) * CANVAS
    cos, sin = math.cos(angle), math.sin(angle)
    linear = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, slant], [0.0, 1.0]]) @ np.diag([width, height])
    offset = centre - linear @ np.array([0.5, 0.5])
    return np.hstack([linear, offset[:, None]])


def _strokes(strokes: list[list[Point]], rng: np.random.Generator) -> Iterator[np.ndarray]:
    placement = _placement(rng)
    for stroke in strokes:
        path = _densify(np.array(stroke, dtype=float))
        yield _wobble(path, rng) @ placement[:, :2].T + placement[:, 2]


def _fit(paths: list[np.ndarray], margin: float) -> list[np.ndarray]:
    """The paths moved (and shrunk, if need be) so that a pen ``margin`` wide stays on the canvas, as on a pad."""
    points = np.concatenate(paths)
    low, high = points.min(axis=0), points.max(axis=0)
    room = CANVAS - 2 * margin
    shrink = min(1.0, room / max(float((high - low).max()), 1e-9))
    size = (high - low) * shrink
    corner = np.clip(low + (high - low - size) / 2, margin, margin + room - size)
    return [(path - low) * shrink + corner for path in paths]


def _densify(path: np.ndarray, step: float = 0.02) -> np.ndarray:
    """Points at most ``step`` apart along ``path``, so that the wobble bends straight segments too."""
    out = [path[0]]
    for a, b in itertools.pairwise(path):
        n = max(1, int(np.linalg.norm(b - a) / step))
        out += [a + (b - a) * k / n for k in range(1, n + 1)]
    return np.array(out)


def _draw(strokes: list[list[Point]], polarity: Polarity, rng: np.random.Generator) -> Image.Image:
    scale = 2  # drawn at twice the size, then reduced: smooth edges, as a browser's canvas draws them
    width = rng.uniform(CANVAS / 32, CANVAS / 9) * scale
    mask = Image.new("L", (CANVAS * scale, CANVAS * scale), 0)
    pen = ImageDraw.Draw(mask)
    for path in _fit(list(_strokes(strokes, rng)), margin=width / scale):
        points = [tuple(p) for p in path * scale]
        pen.line(points, fill=255, width=round(width))
        for x, y in points:  # a round pen: round caps and joins
            pen.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=255)
    ink = np.asarray(mask.resize((CANVAS, CANVAS), Image.Resampling.LANCZOS), dtype=np.float32) / 255
    if polarity == "light-on-dark":
        pixels = ink * rng.uniform(220, 255)
    else:
        pixels = _paper(rng) * (1 - ink) + ink * rng.uniform(15, 90)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L")
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2))) if polarity == "dark-on-light" else image


def _paper(rng: np.random.Generator) -> np.ndarray:
    """Grey-white paper under uneven light: a gradient across the page and a little grain."""
    y, x = np.mgrid[0:CANVAS, 0:CANVAS] / CANVAS
    direction = rng.uniform(0, 2 * np.pi)
    light = rng.uniform(185, 245) + rng.uniform(-25, 25) * (np.cos(direction) * x + np.sin(direction) * y - 0.5)
    return light + rng.normal(0, 3, (CANVAS, CANVAS))


def check_arrays(spec: InputSpec, per_digit: int = CARD_PER_DIGIT) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per polarity, the check set (the drawings ``make bench`` sends) as the network's inputs and labels.

    The card's ``input.digits`` with training's torch code (``training.digit_ink``, held equal to the
    service's by a test), then ``mean``/``std``: what ``/predict`` makes of the same PNGs.
    """
    import torch

    from training.digit_ink import digits_input

    if spec.digits is None:
        raise ValueError("the handwriting check set is for digit models (a card with input.digits)")
    mean = np.asarray(spec.mean, np.float32)[:, None, None]
    std = np.asarray(spec.std, np.float32)[:, None, None]
    drawn = handwritten_digits(per_digit)  # one draw of both polarities: the drawings make bench sends
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for polarity in POLARITIES:
        mine = [digit for digit in drawn if digit.polarity == polarity]
        images = []
        for digit in mine:
            grey = torch.from_numpy(np.asarray(digit.image, dtype=np.float32) / 255.0)
            pixels = digits_input(grey, spec.crop, spec.digits)
            assert pixels is not None, "a drawn digit has ink"
            images.append((np.broadcast_to(pixels.numpy(), tuple(spec.shape)) - mean) / std)
        out[polarity] = (np.stack(images).astype(np.float32), np.array([d.label for d in mine]))
    return out
