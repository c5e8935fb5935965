"""``POST /predict`` and ``POST /models/{name}/predict``: images or a tensor in, top-k classes out.

``POST /models/{name}/preprocess`` takes the same image bodies and answers what the model sees.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from ...core.dataplane import DataPlane
from ..codecs import predict_response, preprocess_response, read_predict
from ..deps import DataPlaneDep
from ..middleware import record_servable
from ..openapi import RETRY_AFTER, SERVER_FAULT
from ..schemas import (
    BASE64_IMAGE_SCHEMA,
    ErrorResponse,
    PredictOptions,
    PredictRequest,
    PredictResponse,
    PreprocessResponse,
)

router = APIRouter(tags=["predict"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "unknown model, version or variant"},
    413: {
        "model": ErrorResponse,
        "description": "body over CNNSERVE_MAX_BODY_BYTES or image over CNNSERVE_MAX_IMAGE_PIXELS",
    },
    415: {"model": ErrorResponse, "description": "not an image the server can decode, or an unknown Content-Type"},
    422: {
        "model": ErrorResponse,
        "description": "invalid options, base64, image or tensor (the message names the expected shape); "
        "a tensor with NaN or ±Inf (the message names the input and how many values)",
    },
    500: {"model": ErrorResponse, "description": SERVER_FAULT},
    503: {
        "model": ErrorResponse,
        "description": "model not ready, or its queue is full (Retry-After)",
        "headers": RETRY_AFTER,
    },
}
# Images as /predict and /preprocess take them; /predict also takes a tensor in its JSON body.
_IMAGE_BODIES: dict[str, Any] = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}}},
        },
        "encoding": {"file": {"contentType": "image/*"}},
    },
    "image/*": {"schema": {"type": "string", "format": "binary"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            **_IMAGE_BODIES,
            "application/json": {
                "schema": PredictRequest.model_json_schema(),
                "examples": {
                    "images": {
                        "summary": "base64 images",
                        "value": {"model": "resnet18", "top_k": 3, "images": ["<base64>"]},
                    },
                    "tensor": {
                        "summary": "a preprocessed tensor (C, H, W) or (N, C, H, W)",
                        "value": {"model": "lenet5", "tensor": [[[0.0] * 32] * 32]},
                    },
                },
            },
        },
    }
}
_PREPROCESS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            **_IMAGE_BODIES,
            "application/json": {
                "schema": {"type": "object", "properties": {"images": {"type": "array", "items": BASE64_IMAGE_SCHEMA}}},
                "examples": {"image": {"summary": "one base64 image", "value": {"images": ["<base64>"]}}},
            },
        },
    }
}


async def run_predict(
    request: Request, dataplane: DataPlane, query: PredictOptions, path_model: str | None
) -> PredictResponse:
    """The endpoints' work after routing and dependencies; :mod:`service.http.inference` calls it too."""
    started = time.perf_counter()
    payload = await read_predict(request, query, path_model=path_model, max_images=dataplane.settings.max_images)
    options = payload.options
    servable = dataplane.resolve(options.model, options.version, options.variant)
    record_servable(request, servable)
    with dataplane.span("decode"):
        if payload.images is not None:
            batch = await dataplane.decode_images(servable, payload.images)
        else:
            batch = dataplane.tensor(servable, payload.tensor)
    decoded = time.perf_counter()
    result = await dataplane.infer(servable, batch)
    with dataplane.span("encode"):
        return predict_response(result, options, started, decoded)


@router.post(
    "/predict",
    response_model=PredictResponse,
    summary="Classify images (or a tensor)",
    responses=_ERRORS,
    openapi_extra=_BODY,
)
async def predict(
    request: Request, dataplane: DataPlaneDep, query: Annotated[PredictOptions, Query()]
) -> PredictResponse:
    return await run_predict(request, dataplane, query, None)


@router.post(
    "/models/{name}/predict",
    response_model=PredictResponse,
    summary="Classify with the named model",
    responses=_ERRORS,
    openapi_extra=_BODY,
)
async def predict_with(
    name: str, request: Request, dataplane: DataPlaneDep, query: Annotated[PredictOptions, Query()]
) -> PredictResponse:
    return await run_predict(request, dataplane, query, name)


@router.post(
    "/models/{name}/preprocess",
    response_model=PreprocessResponse,
    summary="What the model sees: one image after its preprocessing",
    responses={
        **_ERRORS,
        422: {"model": ErrorResponse, "description": "not one image (none, several, or a tensor), or bad base64"},
    },
    openapi_extra=_PREPROCESS_BODY,
)
async def preprocess(
    name: str,
    request: Request,
    dataplane: DataPlaneDep,
    version: Annotated[int | None, Query(ge=1, description="model version (default: the latest served)")] = None,
) -> PreprocessResponse:
    """The image resized, cropped and normalised as for ``/predict`` (the same code), then mapped back to pixels."""
    query = PredictOptions(model=name, version=version)
    payload = await read_predict(request, query, path_model=name, max_images=dataplane.settings.max_images)
    servable = dataplane.resolve(name, payload.options.version)
    record_servable(request, servable)
    return await run_in_threadpool(preprocess_response, servable, payload)
