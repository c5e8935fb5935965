"""The handwriting check set (export/handwriting.py): strokes drawn as a hand draws them, the same for a seed."""

from __future__ import annotations

import numpy as np

from export.handwriting import CANVAS, POLARITIES, STROKES, handwritten_digits


def _pixels(drawing) -> np.ndarray:
    return np.asarray(drawing.image, dtype=np.float32)


def test_every_digit_in_every_polarity_and_every_way_of_writing_it() -> None:
    drawn = handwritten_digits(per_digit=3, seed=0)
    assert len(drawn) == 10 * 3 * len(POLARITIES)
    for polarity in POLARITIES:
        mine = [d for d in drawn if d.polarity == polarity]
        assert sorted({d.label for d in mine}) == list(range(10))
        for digit, styles in STROKES.items():
            assert {d.style for d in mine if d.label == digit} == set(range(min(3, len(styles))))
    assert all(d.image.size == (CANVAS, CANVAS) and d.image.mode == "L" for d in drawn)


def test_polarities_are_what_they_say() -> None:
    """White strokes on black as on the canvas; dark ink on light paper as in a photo: the border tells."""
    for drawing in handwritten_digits(per_digit=2, seed=3):
        pixels = _pixels(drawing)
        border = np.concatenate(
            [pixels[:8].ravel(), pixels[-8:].ravel(), pixels[:, :8].ravel(), pixels[:, -8:].ravel()]
        )
        ink = pixels.max() if drawing.polarity == "light-on-dark" else pixels.min()
        if drawing.polarity == "light-on-dark":
            assert np.median(border) < 30 and ink > 200
        else:
            assert np.median(border) > 140 and ink < 110


def test_strokes_stay_on_the_canvas_and_vary() -> None:
    drawn = handwritten_digits(per_digit=6, seed=1, polarities=("light-on-dark",))
    ink = [(_pixels(d) > 128) for d in drawn]
    assert all(mask[:2].sum() + mask[-2:].sum() + mask[:, :2].sum() + mask[:, -2:].sum() == 0 for mask in ink)
    heights = [np.flatnonzero(mask.any(axis=1)) for mask in ink]
    spans = [h[-1] - h[0] for h in heights]
    assert max(spans) - min(spans) > CANVAS / 6, "digits of different sizes"
    ones = [m for m, d in zip(ink, drawn, strict=True) if d.label == 1]
    assert len({m.tobytes() for m in ones}) == len(ones), "no two drawings alike"


def test_the_same_seed_draws_the_same_set() -> None:
    first, again = handwritten_digits(per_digit=1, seed=7), handwritten_digits(per_digit=1, seed=7)
    assert [d.image.tobytes() for d in first] == [d.image.tobytes() for d in again]
    other = handwritten_digits(per_digit=1, seed=8)
    assert [d.image.tobytes() for d in first] != [d.image.tobytes() for d in other]
