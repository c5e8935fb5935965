"""The model card: what ``<repository>/<name>/model.json`` holds, as typed, frozen records.

Written by ``export`` (last, atomically), read by ``service`` and ``export verify``. Torch-free:
pydantic and the standard library only.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .summary import SummaryRecord

__all__ = [
    "CARD_FORMAT",
    "VARIANT_FILES",
    "Architecture",
    "Batching",
    "InputSpec",
    "ModelCard",
    "Precision",
    "TensorSpec",
    "Variant",
    "VersionCard",
]

CARD_FORMAT = 1
VARIANT_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}

Precision = Literal["fp32", "int8", "fp16"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TensorSpec(_Record):
    """One input or output of the ONNX graph; -1 marks the dynamic batch dimension."""

    name: str
    dtype: str = "float32"
    shape: list[int]


class InputSpec(_Record):
    """How an image becomes the model's input tensor.

    Decode, convert to ``color_mode``, resize the shorter side to ``resize`` (bilinear),
    centre-crop ``crop`` x ``crop``, scale to [0, 1], subtract ``mean``, divide by ``std``,
    lay out as NCHW float32.
    """

    shape: list[int] = Field(description="C, H, W")
    dtype: str = "float32"
    layout: Literal["NCHW"] = "NCHW"
    color_mode: Literal["L", "RGB"]
    resize: int
    crop: int
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"
    mean: list[float]
    std: list[float]

    @property
    def channels(self) -> int:
        return self.shape[0]


class Architecture(_Record):
    name: str = Field(description="zoo name, as in models.list_models()")
    family: str
    paper: str
    options: dict[str, Any] = Field(default_factory=dict)


class Variant(_Record):
    """One ONNX file of a version. Unpublished variants stay in the card with the reason."""

    precision: Precision
    file: str
    published: bool = True
    sha256: str | None = None
    bytes: int | None = None
    test_top1: float | None = None
    reason: str | None = None


class VersionCard(_Record):
    version: int
    created: str
    variants: dict[Precision, Variant]
    verification: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)


class Batching(_Record):
    """Triton's dynamic batching settings for this model (mirrored in config.pbtxt)."""

    max_batch_size: int = 32
    max_queue_delay_microseconds: int = 500
    preferred_batch_size: list[int] = Field(default_factory=list)


class ModelCard(_Record):
    format: int = CARD_FORMAT
    name: str
    description: str = ""
    architecture: Architecture
    task: Literal["image-classification"] = "image-classification"
    labels: list[str]
    input: InputSpec
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    batching: Batching = Batching()
    quick: bool = Field(False, description="trained by --quick: a smoke-test model, not a real one")
    versions: dict[int, VersionCard]
    summary: SummaryRecord
    canonical_summary: SummaryRecord
    created: str

    @property
    def latest_version(self) -> int:
        return max(self.versions)

    @property
    def num_classes(self) -> int:
        return len(self.labels)
