"""The Open Inference Protocol (KServe v2 / Triton) REST bodies.

Field names are the protocol's. Tensor ``data`` is left untyped here (nested or flat lists,
as the protocol allows) and turned into a numpy array in one go by :mod:`service.http.v2_codec`;
validating it element by element through pydantic would cost more than the inference.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "V2InferenceRequest",
    "V2InferenceResponse",
    "V2ModelConfig",
    "V2ModelMetadata",
    "V2ModelReady",
    "V2RepositoryEntry",
    "V2RequestInput",
    "V2RequestOutput",
    "V2ResponseOutput",
    "V2ServerLive",
    "V2ServerMetadata",
    "V2ServerReady",
    "V2TensorMetadata",
]


class V2ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class V2ServerLive(BaseModel):
    live: bool


class V2ServerReady(BaseModel):
    ready: bool


class V2ModelReady(BaseModel):
    name: str
    version: str | None = None
    ready: bool


class V2TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class V2ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]


class V2ModelConfig(BaseModel):
    """A JSON rendering of the Triton model configuration (what ``tritonclient.get_model_config`` reads)."""

    name: str
    platform: str
    backend: str
    max_batch_size: int
    input: list[dict[str, Any]]
    output: list[dict[str, Any]]
    dynamic_batching: dict[str, Any]
    version_policy: dict[str, Any]


class V2RepositoryEntry(BaseModel):
    name: str
    version: str | None = None
    state: str
    reason: str = ""


class V2RequestInput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class V2RequestOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class V2InferenceRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[V2RequestInput] = Field(min_length=1)
    outputs: list[V2RequestOutput] | None = None


class V2ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class V2InferenceResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[V2ResponseOutput]
