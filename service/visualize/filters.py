"""A convolution's learned filters as images, from the weights of the served file."""

from __future__ import annotations

import numpy as np

from repository import LayerOutput, LayerOutputs

from ..core.errors import InvalidInput, UnknownLayer
from .images import ImageBudget, to_signed_grey
from .schemas import FilterImage

__all__ = ["convolution", "filter_images"]


def convolution(record: LayerOutputs, name: str | None) -> LayerOutput:
    """The convolution ``name`` (default, or a blank name: the network's first), from the version's layer record."""
    convolutions = [layer for layer in record.layers if layer.weight is not None]
    if not convolutions:
        raise InvalidInput("the model has no convolution with recorded weights")
    name = name.strip() if name else None
    if not name:
        return convolutions[0]
    layer = record.find(name)
    if layer is None or layer.weight is None:
        what = "not a convolution" if layer is not None else "unknown"
        names = [c.name for c in convolutions]
        raise UnknownLayer(
            f"layer {name!r} is {what}; convolutions: {', '.join(names[:20])}{', ...' if len(names) > 20 else ''}",
            details={"layer": name, "convolutions": names},
        )
    return layer


def filter_images(weights: np.ndarray, count: int, budget: ImageBudget) -> tuple[list[FilterImage], int, float]:
    """The first ``count`` filters of ``weights`` (out, in, kh, kw): per input channel, and in colour over 3.

    One scale for the layer (grey 0, white its largest |weight|), so filters compare by eye.
    Returns the images, how many input channels each shows (at most ``count``) and the scale.
    """
    scale = float(np.abs(weights).max()) if weights.size else 0.0
    shown = min(weights.shape[1], count)
    out = []
    for index in range(min(weights.shape[0], count)):
        kernel = weights[index]
        rgb = budget.take(to_signed_grey(kernel.transpose(1, 2, 0), scale)) if kernel.shape[0] == 3 else None
        channels = [budget.take(to_signed_grey(kernel[c], scale)) for c in range(shown)]
        out.append(
            FilterImage(
                index=index,
                norm=float(np.linalg.norm(kernel)),
                rgb=rgb,
                channels=[url for url in channels if url is not None],
            )
        )
    return out, shown, scale
