"""The Open Inference Protocol v2 (KServe / Triton), as ``tritonclient.http`` speaks it.

Health endpoints are in ``health_router`` (never behind the API key: probes and the container's
HEALTHCHECK call them); everything else is in ``router``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ... import __version__
from ...core import protocol
from ...core.dataplane import DataPlane
from ...core.errors import ServiceNotReady
from ...core.model_manager import ModelState
from ..deps import DataPlaneDep, ManagerDep, ModelDep, ReadinessDep
from ..middleware import record_servable
from ..openapi import RETRY_AFTER, SERVER_FAULT
from ..schemas import ErrorResponse
from ..v2_codec import HEADER_LENGTH, decode_infer, encode_infer, inflate
from ..v2_schemas import (
    V2InferenceRequest,
    V2InferenceResponse,
    V2ModelConfig,
    V2ModelMetadata,
    V2ModelReady,
    V2RepositoryEntry,
    V2ServerLive,
    V2ServerMetadata,
    V2ServerReady,
)

health_router = APIRouter(prefix="/v2", tags=["v2"])
router = APIRouter(prefix="/v2", tags=["v2"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "unknown model or version"},
    503: {"model": ErrorResponse, "description": "the model (or version) is not ready"},
}
_INFER_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    413: {"model": ErrorResponse, "description": "body over CNNSERVE_MAX_BODY_BYTES"},
    415: {"model": ErrorResponse, "description": "a Content-Encoding other than gzip or deflate"},
    422: {
        "model": ErrorResponse,
        "description": "wrong input name, datatype or shape (the message names the expected one); "
        "a tensor with NaN or ±Inf, or strings as numbers (the message names the input)",
    },
    500: {"model": ErrorResponse, "description": SERVER_FAULT},
    503: {
        "model": ErrorResponse,
        "description": "the model (or version) is not ready, or its queue is full (Retry-After)",
        "headers": RETRY_AFTER,
    },
}


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its local ``$defs`` references replaced by the definitions (OpenAPI has no $defs here)."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.rsplit("/", 1)[1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


_INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": _inline(V2InferenceRequest.model_json_schema()),
                "example": {
                    "inputs": [{"name": "input", "shape": [1, 1, 32, 32], "datatype": "FP32", "data": [0.0] * 1024}],
                    "outputs": [{"name": "probabilities", "parameters": {"classification": 3}}],
                },
            },
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": f"binary tensor data extension: a JSON header of {HEADER_LENGTH} bytes, then tensors",
            },
        },
    }
}


@health_router.get("/health/live", response_model=V2ServerLive, summary="Server liveness")
async def server_live() -> V2ServerLive:
    return V2ServerLive(live=True)


@health_router.get(
    "/health/ready",
    response_model=V2ServerReady,
    summary="Server readiness: a model is ready (in every worker)",
    responses={503: {"model": ErrorResponse}},
)
async def server_ready(readiness: ReadinessDep) -> V2ServerReady:
    state = readiness.state()
    if not state.ready:
        raise ServiceNotReady(state.reason)
    return V2ServerReady(ready=True)


@router.get("", response_model=V2ServerMetadata, summary="Server metadata")
async def server_metadata() -> V2ServerMetadata:
    return V2ServerMetadata(name="cnnserve", version=__version__, extensions=protocol.EXTENSIONS)


@router.post("/repository/index", response_model=list[V2RepositoryEntry], summary="Models and their state (read-only)")
async def repository_index(manager: ManagerDep) -> list[V2RepositoryEntry]:
    return [
        V2RepositoryEntry(
            name=s.name, version=str(max(s.versions)) if s.versions else None, state=s.status, reason=s.reason or ""
        )
        for s in manager.states()
    ]


@router.get("/models/{name}", response_model=V2ModelMetadata, summary="Model metadata", responses=_ERRORS)
async def model_metadata(model: ModelDep) -> V2ModelMetadata:
    return V2ModelMetadata(**protocol.model_metadata(model, None))


@router.get(
    "/models/{name}/versions/{version}",
    response_model=V2ModelMetadata,
    summary="Model version metadata",
    responses=_ERRORS,
)
async def model_version_metadata(model: ModelDep, version: str) -> V2ModelMetadata:
    return V2ModelMetadata(**protocol.model_metadata(model, version))


def _ready(model: ModelState, version: str | None) -> V2ModelReady:
    model.servable(protocol.version_number(model, version))  # raises 404 / 503 unless it serves
    return V2ModelReady(name=model.name, version=version, ready=True)


@router.get("/models/{name}/ready", response_model=V2ModelReady, summary="Model readiness", responses=_ERRORS)
async def model_ready(model: ModelDep) -> V2ModelReady:
    return _ready(model, None)


@router.get(
    "/models/{name}/versions/{version}/ready",
    response_model=V2ModelReady,
    summary="Model version readiness",
    responses=_ERRORS,
)
async def model_version_ready(model: ModelDep, version: str) -> V2ModelReady:
    return _ready(model, version)


@router.get(
    "/models/{name}/config", response_model=V2ModelConfig, summary="Triton-style model configuration", responses=_ERRORS
)
async def model_config(model: ModelDep, manager: ManagerDep) -> V2ModelConfig:
    return V2ModelConfig(**protocol.model_config(model.servable(), manager.settings.version_policy))


async def run_infer(request: Request, dataplane: DataPlane, model: ModelState, version: str | None) -> Response:
    """The infer endpoints' work after routing and dependencies; :mod:`service.http.inference` calls it too."""
    number = protocol.version_number(model, version)
    servable = model.servable(number)
    record_servable(request, servable)
    body = inflate(await request.body(), request.headers.get("content-encoding"), dataplane.settings.max_body_bytes)
    with dataplane.span("decode"):
        decoded = decode_infer(body, request.headers.get(HEADER_LENGTH), servable.output_names)
        if decoded.variant is not None:
            servable = model.servable(number, decoded.variant)
            record_servable(request, servable)
        batch = dataplane.batch(servable, decoded.inputs)
    result = await dataplane.infer(servable, batch)
    with dataplane.span("encode"):
        content, headers = encode_infer(
            servable.name, servable.version, decoded.id, result.outputs, decoded.outputs, servable.labels
        )
    media_type = "application/octet-stream" if headers else "application/json"
    return Response(content, media_type=media_type, headers=headers)


@router.post(
    "/models/{name}/infer",
    summary="Inference (JSON or binary tensors)",
    response_model=V2InferenceResponse,
    responses=_INFER_ERRORS,
    openapi_extra=_INFER_BODY,
)
async def infer(request: Request, dataplane: DataPlaneDep, model: ModelDep) -> Response:
    return await run_infer(request, dataplane, model, None)


@router.post(
    "/models/{name}/versions/{version}/infer",
    summary="Inference on a version",
    response_model=V2InferenceResponse,
    responses=_INFER_ERRORS,
    openapi_extra=_INFER_BODY,
)
async def infer_version(request: Request, dataplane: DataPlaneDep, model: ModelDep, version: str) -> Response:
    return await run_infer(request, dataplane, model, version)
