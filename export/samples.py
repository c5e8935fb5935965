"""A version's sample images: a few real held-out images, published as PNGs next to its ONNX files.

``<name>/<version>/samples/<k>-<label>.png``, listed in the version card with their class and
sha256 (:class:`repository.SampleImage`), so that the service, the web page and the README can
show what the model takes without anyone looking for an image. They come from the test split
(:func:`training.data.held_out_images`), never from the images the model trained on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from repository import SAMPLES_DIR, SampleImage, sha256_file

if TYPE_CHECKING:
    from training.data import HeldOutImage

__all__ = ["MAX_SIDE", "write_samples"]

# Photographs are stored at most this many pixels on their longer side: the service resizes them
# anyway (to 256 for ImageNet's 224 crop), and a full-size PNG of a photo weighs megabytes.
MAX_SIDE = 512


def _slug(label: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:60] if label is not None else "photo"


def write_samples(images: Sequence[HeldOutImage], version_dir: Path) -> list[SampleImage]:
    """Write ``images`` as PNGs into ``version_dir/samples``; returns their records, in order."""
    if not images:
        return []
    folder = version_dir / SAMPLES_DIR
    folder.mkdir()
    records = []
    for k, held_out in enumerate(images):
        image = held_out.image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE))
        path = folder / f"{k}-{_slug(held_out.label)}.png"
        image.save(path, format="PNG")
        records.append(
            SampleImage(file=path.name, label=held_out.label, index=held_out.index, sha256=sha256_file(path))
        )
    return records
