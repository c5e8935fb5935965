"""``POST /predict`` and ``POST /models/{name}/predict``: images or a tensor in, top-k classes out."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ..codecs import predict_response, read_predict
from ..dataplane import DataPlane
from ..deps import DataPlaneDep
from ..schemas import ErrorResponse, PredictOptions, PredictRequest, PredictResponse

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
        "description": "invalid options, base64, image or tensor (the message names the expected shape)",
    },
    503: {"model": ErrorResponse, "description": "model not ready, or its queue is full (Retry-After)"},
}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                },
                "encoding": {"file": {"contentType": "image/*"}},
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
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


async def run_predict(
    request: Request, dataplane: DataPlane, query: PredictOptions, path_model: str | None
) -> PredictResponse:
    """The endpoints' work after routing and dependencies; :mod:`service.fastpath` calls it too."""
    started = time.perf_counter()
    payload = await read_predict(request, query, path_model=path_model, max_images=dataplane.settings.max_images)
    options = payload.options
    servable = dataplane.resolve(options.model, options.version, options.variant)
    request.state.model = servable.name
    if payload.images is not None:
        batch = await dataplane.decode_images(servable, payload.images)
    else:
        batch = dataplane.tensor(servable, payload.tensor)
    decoded = time.perf_counter()
    result = await dataplane.infer(servable, batch)
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
