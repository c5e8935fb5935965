"""The Open Inference Protocol v2 (KServe / Triton), as ``tritonclient.http`` speaks it.

Health endpoints are in ``health_router`` (never behind the API key: probes and the container's
HEALTHCHECK call them); everything else is in ``router``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ... import __version__
from ...core.dataplane import V2_DATATYPES, DataPlane
from ...core.errors import InvalidInput, ModelNotReady, ServiceNotReady, VersionNotFound
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
    V2TensorMetadata,
)

health_router = APIRouter(prefix="/v2", tags=["v2"])
router = APIRouter(prefix="/v2", tags=["v2"])

EXTENSIONS = ["binary_tensor_data", "classification", "model_repository"]
PLATFORM = "onnxruntime_onnx"
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


def _version(model: ModelState, version: str | None) -> int | None:
    if version is None:
        return None
    # ASCII digits, and not too many: str.isdigit also accepts "²" (which int() refuses) and "١" (which
    # it reads as 1), and int() refuses more than 4,300 digits. No version number has 19 digits.
    if not (version.isascii() and version.isdigit()) or len(version) > 18:
        raise VersionNotFound(f"model {model.name!r} has no version {version[:40]!r}")
    return int(version)


def _tensor(spec: Any) -> V2TensorMetadata:
    return V2TensorMetadata(name=spec.name, datatype=V2_DATATYPES.get(spec.dtype, spec.dtype.upper()), shape=spec.shape)


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
    return V2ServerMetadata(name="cnnserve", version=__version__, extensions=EXTENSIONS)


@router.post("/repository/index", response_model=list[V2RepositoryEntry], summary="Models and their state (read-only)")
async def repository_index(manager: ManagerDep) -> list[V2RepositoryEntry]:
    return [
        V2RepositoryEntry(
            name=s.name, version=str(max(s.versions)) if s.versions else None, state=s.status, reason=s.reason or ""
        )
        for s in manager.states()
    ]


def _metadata(model: ModelState, version: str | None) -> V2ModelMetadata:
    number = _version(model, version)
    if model.card is None:
        raise ModelNotReady(f"model {model.name!r} is unavailable: {model.reason}")
    if number is not None:
        model.servable(number)  # 404/503 for a version that is not served
    versions = [str(number)] if number is not None else [str(v) for v in sorted(model.versions)]
    card = model.card
    return V2ModelMetadata(
        name=model.name,
        versions=versions,
        platform=PLATFORM,
        inputs=[_tensor(t) for t in card.inputs],
        outputs=[_tensor(t) for t in card.outputs],
    )


@router.get("/models/{name}", response_model=V2ModelMetadata, summary="Model metadata", responses=_ERRORS)
async def model_metadata(model: ModelDep) -> V2ModelMetadata:
    return _metadata(model, None)


@router.get(
    "/models/{name}/versions/{version}",
    response_model=V2ModelMetadata,
    summary="Model version metadata",
    responses=_ERRORS,
)
async def model_version_metadata(model: ModelDep, version: str) -> V2ModelMetadata:
    return _metadata(model, version)


def _ready(model: ModelState, version: str | None) -> V2ModelReady:
    model.servable(_version(model, version))  # raises 404 / 503 unless it serves
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
    servable = model.servable()
    card, batching = servable.card, servable.batcher.config

    def tensor(spec: Any) -> dict[str, Any]:
        return {"name": spec.name, "data_type": "TYPE_" + V2_DATATYPES.get(spec.dtype, "FP32"), "dims": spec.shape[1:]}

    policy = {"latest": {"num_versions": 1}} if manager.settings.version_policy == "latest" else {"all": {}}
    return V2ModelConfig(
        name=card.name,
        platform=PLATFORM,
        backend="onnxruntime",
        max_batch_size=batching.max_batch_size,
        input=[tensor(t) for t in card.inputs],
        output=[tensor(t) for t in card.outputs],
        dynamic_batching={
            "max_queue_delay_microseconds": batching.max_queue_delay_microseconds,
            "default_queue_policy": {"max_queue_size": batching.max_queue_size},
        },
        version_policy=policy,
    )


async def run_infer(request: Request, dataplane: DataPlane, model: ModelState, version: str | None) -> Response:
    """The infer endpoints' work after routing and dependencies; :mod:`service.http.inference` calls it too."""
    number = _version(model, version)
    servable = model.servable(number)
    record_servable(request, servable)
    body = inflate(await request.body(), request.headers.get("content-encoding"), dataplane.settings.max_body_bytes)
    with dataplane.span("decode"):
        decoded = decode_infer(body, request.headers.get(HEADER_LENGTH), servable.output_names)
        if decoded.variant is not None:
            servable = model.servable(number, decoded.variant)
            record_servable(request, servable)
        if len(decoded.inputs) != 1:
            raise InvalidInput(
                f"model {servable.name!r} takes one input, {servable.input.name!r}; got {len(decoded.inputs)}"
            )
        name, array = decoded.inputs[0]
        batch = dataplane.check(servable, array, name)
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
