"""``POST /models/{name}/activations``, ``GET /models/{name}/filters``, ``POST /models/{name}/occlusion``.

What the network sees: its layers' feature maps for an input, its convolutions' learned filters,
and where in an input its decision comes from. Inputs are read as ``/predict`` reads them (one
image, raw, multipart or base64 JSON, or a tensor).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from repository import Precision

from ...core.dataplane import DataPlane, elapsed_ms
from ...core.errors import InvalidInput
from ...core.model_manager import Servable
from ...visualize import DEFAULT_CHANNELS, Views
from ...visualize.activations import select_layers
from ...visualize.schemas import ActivationsResponse, FiltersResponse, OcclusionResponse
from ...visualize.sessions import layer_record
from ..codecs import PredictPayload, read_predict
from ..deps import DataPlaneDep, ViewsDep
from ..middleware import record_servable
from ..schemas import BASE64_IMAGE_SCHEMA, ErrorResponse, PredictOptions

router = APIRouter(tags=["views"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "unknown model or version"},
    409: {"model": ErrorResponse, "description": "the version was published before its layers were recorded: rebuild"},
    413: {"model": ErrorResponse, "description": "body over CNNSERVE_MAX_BODY_BYTES or image over the pixel limit"},
    415: {"model": ErrorResponse, "description": "not an image the server can decode, or an unknown Content-Type"},
    422: {
        "model": ErrorResponse,
        "description": "unknown layer (details list the valid names), a limit exceeded (the message names the "
        "CNNSERVE_* setting and how to fit), more than one input, or an invalid image or tensor",
    },
    503: {"model": ErrorResponse, "description": "model not ready, or its queue is full (Retry-After)"},
}
_NO_BODY_ERRORS = {k: v for k, v in _ERRORS.items() if k in (404, 409, 422, 503)}
_OCCLUSION_ERRORS = {k: v for k, v in _ERRORS.items() if k != 409}  # it runs the model alone: no record needed
_BINARY = {"schema": {"type": "string", "format": "binary"}}
# One input, read as /predict reads it (its options other than version and variant do not apply).
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "image/*": _BINARY,
            "application/octet-stream": _BINARY,
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "images": {"type": "array", "items": BASE64_IMAGE_SCHEMA, "maxItems": 1},
                        "tensor": {"type": "array", "items": {}},
                    },
                },
                "examples": {
                    "image": {"summary": "one base64 image", "value": {"images": ["<base64>"]}},
                    "tensor": {"summary": "a preprocessed tensor (C, H, W)", "value": {"tensor": [[[0.0] * 32] * 32]}},
                },
            },
        },
    }
}


def _json(views: Views, model: str, view: str, started: float, answer: BaseModel) -> Response:
    body = answer.model_dump_json()
    views.observe(model, view, time.perf_counter() - started, len(body))
    return Response(body, media_type="application/json")


async def _one_input(dataplane: DataPlane, servable: Servable, payload: PredictPayload) -> np.ndarray:
    if payload.images is not None:
        batch = await dataplane.decode_images(servable, payload.images)
    else:
        batch = dataplane.tensor(servable, payload.tensor)
    if batch.shape[0] != 1:
        raise InvalidInput(f"the views explain one input at a time; got {batch.shape[0]}")
    return batch


@router.post(
    "/models/{name}/activations",
    response_model=ActivationsResponse,
    summary="Feature maps: each layer's output for one input, with statistics and channel images",
    responses=_ERRORS,
    openapi_extra=_BODY,
)
async def activations(
    name: str,
    request: Request,
    dataplane: DataPlaneDep,
    views: ViewsDep,
    layers: Annotated[
        list[str] | None,
        Query(
            description="layer names as in the summary, repeated or comma-separated (default, or empty: every block)"
        ),
    ] = None,
    channels: Annotated[
        int | None, Query(ge=1, description=f"channel images per layer, most active first (default {DEFAULT_CHANNELS})")
    ] = None,
    version: Annotated[int | None, Query(ge=1, description="model version (default: the latest served)")] = None,
) -> Response:
    started = time.perf_counter()
    count = views.channels(channels)
    payload = await read_predict(request, PredictOptions(version=version), path_model=name, max_images=1)
    servable = dataplane.resolve(name, payload.options.version)
    record_servable(request, servable)
    record = layer_record(servable)
    selected, note = select_layers(record, layers, views.settings.max_view_layers)
    batch = await _one_input(dataplane, servable, payload)
    answer = await views.activations(servable, record, batch, selected, count, note, elapsed_ms(started))
    return _json(views, servable.name, "activations", started, answer)


@router.get(
    "/models/{name}/filters",
    response_model=FiltersResponse,
    summary="A convolution's learned filters as images, from the served file's weights",
    responses=_NO_BODY_ERRORS,
)
async def filters(
    name: str,
    request: Request,
    dataplane: DataPlaneDep,
    views: ViewsDep,
    layer: Annotated[
        str | None, Query(description="a convolution, as named in the summary (default, or empty: the first)")
    ] = None,
    count: Annotated[
        int | None, Query(alias="filters", ge=1, description="filters to show (default: all, up to the limit)")
    ] = None,
    version: Annotated[int | None, Query(ge=1, description="model version (default: the latest served)")] = None,
) -> Response:
    started = time.perf_counter()
    servable = dataplane.resolve(name, version)
    record_servable(request, servable)
    answer = await views.filters(servable, layer_record(servable), layer, count)
    return _json(views, servable.name, "filters", started, answer)


@router.post(
    "/models/{name}/occlusion",
    response_model=OcclusionResponse,
    summary="Occlusion sensitivity: how much the class's probability drops with a grey patch at each place",
    responses=_OCCLUSION_ERRORS,
    openapi_extra=_BODY,
)
async def occlusion(
    name: str,
    request: Request,
    dataplane: DataPlaneDep,
    views: ViewsDep,
    patch: Annotated[
        int | None,
        Query(ge=1, description="side of the square patch in input pixels (default: a quarter of the input)"),
    ] = None,
    stride: Annotated[
        int | None,
        Query(ge=1, description="step between patches (default: a quarter of the patch, half above 96 pixels)"),
    ] = None,
    class_index: Annotated[
        int | None, Query(alias="class", ge=0, description="class to explain, 0-based (default: the top-1)")
    ] = None,
    version: Annotated[int | None, Query(ge=1, description="model version (default: the latest served)")] = None,
    variant: Annotated[Precision | None, Query(description="fp32, int8 or fp16 (default: fp32)")] = None,
) -> Response:
    started = time.perf_counter()
    payload = await read_predict(
        request, PredictOptions(version=version, variant=variant), path_model=name, max_images=1
    )
    options = payload.options
    servable = dataplane.resolve(name, options.version, options.variant)
    record_servable(request, servable)
    batch = await _one_input(dataplane, servable, payload)
    answer = await views.occlusion(servable, batch, patch, stride, class_index, elapsed_ms(started))
    return _json(views, servable.name, "occlusion", started, answer)
