"""Training's redrawn digits (recipes' ``augment="handwriting"``): seeded, sharded, in the data set's form."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.data import load_data
from training.digit_ink import DIGITS, handwriting_augment, ink_to_digits


def _batch(size: int = 32, channels: int = 1, n: int = 48):
    splits = load_data("digits", image_size=size, in_channels=channels, augment="handwriting")
    x, _ = splits.train.batch(torch.arange(n))
    return splits, x


def test_seeded_and_the_same_in_shards() -> None:
    splits, x = _batch()
    assert splits.augment is not None
    first = splits.augment(x, torch.Generator().manual_seed(3), (0, 1))
    again = splits.augment(x, torch.Generator().manual_seed(3), (0, 1))
    assert torch.equal(first, again)
    # Two ranks of a distributed run each see every other image of the global batch and augment it as one process.
    for rank in (0, 1):
        part = splits.augment(x[rank::2], torch.Generator().manual_seed(3), (rank, 2))
        torch.testing.assert_close(part, first[rank::2])


def test_half_is_redrawn_in_the_data_sets_form() -> None:
    splits, x = _batch()
    p = splits.preprocessing
    out = handwriting_augment(x, torch.Generator().manual_seed(0), (0, 1), mean=p.mean[0], std=p.std[0])
    assert out.shape == x.shape
    changed = (out - x).abs().amax(dim=(1, 2, 3)) > 1e-6
    assert 0.25 < changed.float().mean() < 0.75  # about half are redrawn, the rest left as the data set has them
    # A redrawn digit is 8x8 block counts resized as training resizes the data set's digits.
    cells = F.adaptive_avg_pool2d(out[changed] * p.std[0] + p.mean[0], 8)
    again = F.interpolate(cells, size=(32, 32), mode="bilinear", align_corners=False)
    assert (again - (out[changed] * p.std[0] + p.mean[0])).abs().mean() < 0.05
    assert cells.amax(dim=(1, 2, 3)).min() > 0.5  # every redrawn digit has ink


def test_rgb_networks_get_grey_replicated() -> None:
    splits, x = _batch(size=16, channels=3, n=8)
    out = splits.augment(x, torch.Generator().manual_seed(1), (0, 1))
    assert out.shape == (8, 3, 16, 16) and torch.equal(out[:, 0], out[:, 2])


def test_a_digit_drawn_thin_is_thickened_and_fitted() -> None:
    """A one-pixel 1, small in a corner, comes out as a full-height stroke in the middle columns."""
    ink = torch.zeros(1, 1, 120, 120)
    ink[0, 0, 10:40, 15] = 1.0
    digit = ink_to_digits(ink, DIGITS)[0, 0]
    rows, cols = digit.amax(dim=1) > 0, digit.amax(dim=0) > 0
    assert rows.all()  # the height fills the frame
    assert cols[3] and cols[4] and not cols[0] and not cols[7]  # centred
    assert ink_to_digits(torch.zeros(1, 1, 40, 40), DIGITS).abs().sum() == 0  # no ink: blank
