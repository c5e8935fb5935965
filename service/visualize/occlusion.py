"""Occlusion sensitivity (Zeiler and Fergus, 2014): where in the input the decision comes from.

A grey square slides over the input; each occluded copy goes through the model, and the map
holds how much the explained class's probability drops with the square at each place. Grey is
the normalised input's 0, the training data's mean pixel. The copies run through the model's
own dynamic batcher in requests of ``max_batch_size``, two in flight (one running, the next
queued), so they share the session's batches with other requests and memory stays at two
batches whatever the number of copies.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..core.batching import BatchResult
from ..core.errors import InvalidInput, LimitExceeded
from ..core.model_manager import Servable

__all__ = ["FILL", "FINE_UP_TO", "OcclusionPlan", "OcclusionResult", "plan", "run_occlusion"]

FILL = 0.0
FINE_UP_TO = 96  # input side (pixels) up to which the default grid is 13 x 13; 7 x 7 above
_IN_FLIGHT = 2


@dataclass(frozen=True)
class OcclusionPlan:
    patch: int
    stride: int
    ys: list[int]
    xs: list[int]

    @property
    def copies(self) -> int:
        return len(self.ys) * len(self.xs)


def _positions(size: int, patch: int, stride: int) -> list[int]:
    """Top (or left) edges from 0 by ``stride``, and the last one flush with the border."""
    edges = list(range(0, size - patch + 1, stride))
    return edges if edges[-1] == size - patch else [*edges, size - patch]


def _count(height: int, width: int, patch: int, stride: int) -> int:
    return len(_positions(height, patch, stride)) * len(_positions(width, patch, stride))


def plan(height: int, width: int, patch: int | None, stride: int | None, limit: int) -> OcclusionPlan:
    """Patch and stride, checked against the input and ``limit`` copies (CNNSERVE_MAX_OCCLUSION_COPIES).

    Defaults: a patch of a quarter of the side; a stride of a quarter of the patch up to
    :data:`FINE_UP_TO` pixels (13 x 13 = 169 copies at 32 or 64), of half the patch above it
    (7 x 7 = 49 at 224, where each copy costs fifty times as much).
    """
    side = min(height, width)
    patch = patch if patch is not None else max(1, math.ceil(side / 4))
    if patch > side:
        raise InvalidInput(f"patch {patch} is larger than the input ({height}x{width})")
    stride = stride if stride is not None else max(1, patch // (4 if side <= FINE_UP_TO else 2))
    ys, xs = _positions(height, patch, stride), _positions(width, patch, stride)
    if len(ys) * len(xs) > limit:
        fits = next((s for s in range(stride + 1, side + 1) if _count(height, width, patch, s) <= limit), None)
        advice = f"use a stride of at least {fits}" if fits else "use a larger patch"
        raise LimitExceeded(
            f"patch {patch} with stride {stride} makes {len(ys)} x {len(xs)} = {len(ys) * len(xs)} occluded copies; "
            f"the limit is {limit} (CNNSERVE_MAX_OCCLUSION_COPIES): {advice}",
            details={"copies": len(ys) * len(xs), "limit": limit, "setting": "CNNSERVE_MAX_OCCLUSION_COPIES"},
        )
    return OcclusionPlan(patch, stride, ys, xs)


def _chunks(x: np.ndarray, plan: OcclusionPlan, size: int) -> Iterator[np.ndarray]:
    """The occluded copies of ``x`` (1, C, H, W), row by row, in batches of at most ``size``."""
    places = [(y, x0) for y in plan.ys for x0 in plan.xs]
    for start in range(0, len(places), size):
        part = places[start : start + size]
        batch = np.repeat(x, len(part), axis=0)
        for i, (y, x0) in enumerate(part):
            batch[i, :, y : y + plan.patch, x0 : x0 + plan.patch] = FILL
        yield batch


@dataclass(frozen=True)
class OcclusionResult:
    class_index: int
    baseline: float  # the class's probability on the unoccluded input
    drop: np.ndarray  # rows x cols
    batches: int  # requests sent to the batcher, the unoccluded input's included
    run_s: float  # session.run time of the batches they rode in


async def run_occlusion(
    servable: Servable, x: np.ndarray, plan: OcclusionPlan, class_index: int | None
) -> OcclusionResult:
    """The unoccluded input first (its top-1 is the class explained unless ``class_index`` is given), then copies."""
    which = servable.output_names.index("probabilities")
    first = await servable.batcher.submit(x)
    baseline = first.outputs[which][0]
    if class_index is None:
        class_index = int(np.argmax(baseline))
    elif not 0 <= class_index < baseline.shape[0]:
        raise InvalidInput(f"class {class_index} is not one of the model's {baseline.shape[0]} classes (0-based)")
    chunks = _chunks(x, plan, servable.batcher.config.max_batch_size)
    probabilities, batches, run_s = await _through_batcher(servable, chunks, which)
    drop = float(baseline[class_index]) - probabilities[:, class_index]
    return OcclusionResult(
        class_index,
        float(baseline[class_index]),
        drop.reshape(len(plan.ys), len(plan.xs)),
        batches + 1,
        run_s + first.run_s,
    )


async def _through_batcher(
    servable: Servable, chunks: Iterator[np.ndarray], which: int
) -> tuple[np.ndarray, int, float]:
    """Output ``which`` for every chunk, in order, with at most two chunks queued or running at a time."""
    pending: deque[asyncio.Future[BatchResult]] = deque()
    rows: list[np.ndarray] = []
    run_s = 0.0

    async def collect() -> None:
        nonlocal run_s
        result = await pending.popleft()
        rows.append(result.outputs[which])
        run_s += result.run_s

    try:
        for chunk in chunks:
            pending.append(asyncio.ensure_future(servable.batcher.submit(chunk)))
            if len(pending) >= _IN_FLIGHT:
                await collect()
        while pending:
            await collect()
    finally:
        for future in pending:  # a batch failed: the rest is not needed
            future.cancel()
    return np.concatenate(rows), len(rows), run_s
