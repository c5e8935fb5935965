"""The three views of a served model, as the routes call them: feature maps, filters, occlusion.

Each takes a resolved servable and an already decoded input, computes off the event loop (ONNX
Runtime, statistics and PNG encoding in worker threads; occlusion through the model's batcher),
and answers within the CNNSERVE_* limits.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from starlette.concurrency import run_in_threadpool

from repository import LayerOutput, LayerOutputs

from ..core.errors import LimitExceeded
from ..core.model_manager import Servable
from ..observability.metrics import Metrics
from ..settings import Settings
from .activations import layer_activations
from .filters import convolution, filter_images
from .images import ImageBudget
from .occlusion import FILL, plan, run_occlusion
from .schemas import ActivationsResponse, FiltersResponse, LayerActivations, OcclusionResponse, ViewTimings
from .sessions import LayerSessions

__all__ = ["DEFAULT_CHANNELS", "Views"]

# Channel images per layer when a request does not say (at most CNNSERVE_MAX_VIEW_CHANNELS).
DEFAULT_CHANNELS = 16


def _check_limit(value: int, limit: int, what: str, setting: str) -> int:
    """``value``, or a 422 naming the setting when it is over ``limit``."""
    if value > limit:
        raise LimitExceeded(
            f"{value} {what} asked; the limit is {limit} ({setting})",
            details={"requested": value, "limit": limit, "setting": setting},
        )
    return value


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 3)


class Views:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sessions = LayerSessions(settings, metrics)

    def channels(self, asked: int | None) -> int:
        """Channel images per layer: ``asked`` within CNNSERVE_MAX_VIEW_CHANNELS, or the default."""
        limit = self.settings.max_view_channels
        if asked is None:
            return min(DEFAULT_CHANNELS, limit)
        return _check_limit(asked, limit, "channels per layer", "CNNSERVE_MAX_VIEW_CHANNELS")

    def observe(self, model: str, view: str, seconds: float, size: int) -> None:
        self.metrics.view_seconds.labels(model, view).observe(seconds)
        self.metrics.view_bytes.labels(model, view).observe(size)

    async def activations(
        self,
        servable: Servable,
        record: LayerOutputs,
        batch: np.ndarray,
        layers: Sequence[LayerOutput],
        channels: int,
        note: str | None,
        decode_ms: float,
    ) -> ActivationsResponse:
        started = time.perf_counter()
        session = await self.sessions.session(servable, record)
        tensors = list(dict.fromkeys(layer.tensor for layer in layers if layer.tensor != session.input_name))
        values = await run_in_threadpool(session.run, tensors, batch)
        values[session.input_name] = batch  # a layer that passes the input on unchanged (an identity first)
        ran = time.perf_counter()
        budget = ImageBudget(self.settings.max_view_bytes)

        def encode() -> list[LayerActivations]:
            return [layer_activations(layer, values[layer.tensor][0], channels, budget) for layer in layers]

        answered = await run_in_threadpool(encode)
        done = time.perf_counter()
        return ActivationsResponse(
            model=servable.name,
            version=servable.version,
            variant="fp32",
            provider=session.provider,
            input_shape=list(batch.shape[1:]),
            layers=answered,
            note=note,
            bytes=budget.used,
            timings=ViewTimings(
                decode_ms=decode_ms,
                inference_ms=_ms(ran - started),
                encode_ms=_ms(done - ran),
                total_ms=round(decode_ms + _ms(done - started), 3),
            ),
        )

    async def filters(
        self, servable: Servable, record: LayerOutputs, name: str | None, count: int | None
    ) -> FiltersResponse:
        started = time.perf_counter()
        limit = self.settings.max_view_channels
        layer = convolution(record, name)
        assert layer.weight is not None
        weights = await self.sessions.weights(servable, record, layer.weight)
        read = time.perf_counter()
        count = _check_limit(count, limit, "filters", "CNNSERVE_MAX_VIEW_CHANNELS") if count else limit
        budget = ImageBudget(self.settings.max_view_bytes)
        images, shown, scale = await run_in_threadpool(filter_images, weights, count, budget)
        done = time.perf_counter()
        return FiltersResponse(
            model=servable.name,
            version=servable.version,
            layer=layer.name,
            type=layer.type,
            weight=layer.weight,
            holds=layer.holds,
            shape=list(weights.shape),
            scale=scale,
            filters=images,
            filters_total=weights.shape[0],
            in_channels_shown=shown,
            convolutions=[c.name for c in record.layers if c.weight is not None],
            omitted=budget.reason if budget.spent else None,
            bytes=budget.used,
            timings=ViewTimings(
                inference_ms=_ms(read - started), encode_ms=_ms(done - read), total_ms=_ms(done - started)
            ),
        )

    async def occlusion(
        self,
        servable: Servable,
        batch: np.ndarray,
        patch: int | None,
        stride: int | None,
        class_index: int | None,
        decode_ms: float,
    ) -> OcclusionResponse:
        started = time.perf_counter()
        _, height, width = batch.shape[1:]
        chosen = plan(height, width, patch, stride, self.settings.max_occlusion_copies)
        result = await run_occlusion(servable, batch, chosen, class_index)
        done = time.perf_counter()
        return OcclusionResponse(
            model=servable.name,
            version=servable.version,
            variant=servable.precision,  # type: ignore[arg-type]
            provider=servable.provider,
            class_index=result.class_index,
            label=servable.labels[result.class_index],
            baseline=result.baseline,
            patch=chosen.patch,
            stride=chosen.stride,
            fill=FILL,
            rows=len(chosen.ys),
            cols=len(chosen.xs),
            y=chosen.ys,
            x=chosen.xs,
            drop=np.round(result.drop.astype(np.float64), 6).tolist(),
            copies=chosen.copies,
            batches=result.batches,
            timings=ViewTimings(
                decode_ms=decode_ms,
                inference_ms=_ms(result.run_s),
                encode_ms=0.0,
                total_ms=round(decode_ms + _ms(done - started), 3),
            ),
        )
