"""Feature maps: which layers a request names, and each layer's statistics and channel images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from repository import LayerOutput, LayerOutputs

from ..core.errors import LimitExceeded, UnknownLayer
from .images import ImageBudget, to_grey
from .schemas import ChannelImage, LayerActivations

__all__ = ["default_layers", "layer_activations", "select_layers"]


def default_layers(record: LayerOutputs) -> list[LayerOutput]:
    """Every block with a feature map, in the order the network runs them, one name per tensor.

    A convolution whose batch norm was folded into it shares the batch norm's tensor: the
    convolution's name is kept.
    """
    seen: set[str] = set()
    out = []
    for layer in record.layers:
        if layer.block and len(layer.shape) == 3 and layer.tensor not in seen:
            seen.add(layer.tensor)
            out.append(layer)
    return out


def select_layers(
    record: LayerOutputs, names: Sequence[str] | None, limit: int
) -> tuple[list[LayerOutput], str | None]:
    """The layers ``names`` asks for (comma lists allowed), or the default, and a note when the default was cut.

    Names that are all empty (``?layers=``) ask for the default, as no ``layers`` at all does.
    """
    wanted = list(dict.fromkeys(n.strip() for text in names or () for n in text.split(",") if n.strip()))
    if not wanted:
        layers = default_layers(record)
        if len(layers) <= limit:
            return layers, None
        note = f"the first {limit} of {len(layers)} blocks (CNNSERVE_MAX_VIEW_LAYERS); name others with ?layers="
        return layers[:limit], note
    unknown = [n for n in wanted if record.find(n) is None]
    if unknown:
        valid = [layer.name for layer in record.layers]
        raise UnknownLayer(
            f"unknown layer(s) {', '.join(map(repr, unknown))}; valid names are the summary's: "
            f"{', '.join(valid[:20])}{', ...' if len(valid) > 20 else ''} (all in details)",
            details={"unknown": unknown, "layers": valid, "left_out": record.left_out},
        )
    if len(wanted) > limit:
        raise LimitExceeded(
            f"{len(wanted)} layers in one request; the limit is {limit} (CNNSERVE_MAX_VIEW_LAYERS): ask in parts",
            details={"requested": len(wanted), "limit": limit, "setting": "CNNSERVE_MAX_VIEW_LAYERS"},
        )
    return [record.find(n) for n in wanted], None  # type: ignore[misc]


def layer_activations(layer: LayerOutput, value: np.ndarray, channels: int, budget: ImageBudget) -> LayerActivations:
    """Statistics of one input's ``value`` (the layer's output without the batch) and its images."""
    lo, hi = float(value.min()), float(value.max())
    view = LayerActivations(
        name=layer.name,
        type=layer.type,
        tensor=layer.tensor,
        holds=layer.holds,
        shape=list(value.shape),
        min=lo,
        max=hi,
        mean=float(value.mean()),
        zeros=float(np.count_nonzero(value == 0) / value.size),
        scale=(lo, hi),
        channels=value.shape[0] if value.ndim == 3 else value.size,
    )
    if value.ndim == 3:
        view.images = _channel_images(value, channels, lo, hi, budget)
        missing = any(image.image is None for image in view.images)
    else:
        view.vector = budget.take(to_grey(_rows(value.ravel()), lo, hi))
        missing = view.vector is None
    view.omitted = budget.reason if missing else None
    return view


def _channel_images(value: np.ndarray, count: int, lo: float, hi: float, budget: ImageBudget) -> list[ChannelImage]:
    activity = np.abs(value).mean(axis=(1, 2))
    # Most active first; ties (dead channels) in index order.
    order = np.argsort(-activity, kind="stable")[:count]
    peaks = value.max(axis=(1, 2))
    return [
        ChannelImage(
            index=int(c),
            mean_abs=float(activity[c]),
            max=float(peaks[c]),
            image=budget.take(to_grey(value[c], lo, hi)),
        )
        for c in order
    ]


def _rows(values: np.ndarray) -> np.ndarray:
    """A vector as a near-square block of rows (the last row padded with the smallest value)."""
    width = int(np.ceil(np.sqrt(values.size)))
    height = int(np.ceil(values.size / width))
    padded = np.full(width * height, values.min(), dtype=values.dtype)
    padded[: values.size] = values
    return padded.reshape(height, width)
