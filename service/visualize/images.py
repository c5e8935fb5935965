"""Arrays to small PNG images as data URLs, within a byte budget per answer."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

__all__ = ["ImageBudget", "png_data_url", "to_grey", "to_signed_grey"]

_PREFIX = "data:image/png;base64,"


def to_grey(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """uint8 with ``lo`` black and ``hi`` white (all black when they are equal)."""
    if not hi > lo:
        return np.zeros(values.shape, np.uint8)
    scaled = (values.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def to_signed_grey(values: np.ndarray, scale: float) -> np.ndarray:
    """uint8 with 0 mid-grey, ``+scale`` white and ``-scale`` black (weights: the sign matters)."""
    return to_grey(values, -scale, scale) if scale > 0 else np.full(values.shape, 128, np.uint8)


def png_data_url(pixels: np.ndarray) -> str:
    """A (H, W) uint8 array as a greyscale PNG, (H, W, 3) as RGB."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", compress_level=1)
    return _PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")


class ImageBudget:
    """The image bytes an answer may still hold (CNNSERVE_MAX_VIEW_BYTES); once spent, images are left out."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.spent = False

    def take(self, pixels: np.ndarray) -> str | None:
        """The image's data URL, or ``None`` when it would go past the budget (and every image after it)."""
        if self.spent:
            return None
        url = png_data_url(pixels)
        if self.used + len(url) > self.limit:
            self.spent = True
            return None
        self.used += len(url)
        return url

    @property
    def reason(self) -> str:
        return (
            f"the answer's images reached CNNSERVE_MAX_VIEW_BYTES ({self.limit:,} bytes): "
            "ask for fewer layers or channels"
        )
