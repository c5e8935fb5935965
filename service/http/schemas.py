"""Request and response bodies of the service's own endpoints (the v2 protocol's are in v2_schemas)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from repository import Batching, InputSpec, PaperRecord, Precision

from ..core.model_manager import ModelStatus

__all__ = [
    "ClassScore",
    "ErrorResponse",
    "LiveResponse",
    "ModelList",
    "ModelOverview",
    "PredictOptions",
    "PredictRequest",
    "PredictResponse",
    "Prediction",
    "PreprocessResponse",
    "ReadyResponse",
    "SampleList",
    "SampleOverview",
    "Timings",
    "VariantOverview",
    "VersionOverview",
]


class ErrorResponse(BaseModel):
    """The one error shape of every endpoint. ``error`` is the message (the v2 protocol's field)."""

    error: str = Field(examples=["model 'nope' not found; models: lenet5, resnet18"])
    code: str = Field(description="stable machine-readable reason", examples=["model_not_found"])
    status: int = Field(examples=[404])
    details: Any | None = Field(None, description="structured context: validation errors, the expected tensor, ...")


# --- health -----------------------------------------------------------------------------------


class LiveResponse(BaseModel):
    live: bool = True


class ReadyResponse(BaseModel):
    ready: bool
    models: dict[str, ModelStatus] = Field(description="every model's status")


# --- models -----------------------------------------------------------------------------------


class VariantOverview(BaseModel):
    precision: Precision
    status: ModelStatus
    provider: str | None = Field(None, description="the execution provider ONNX Runtime actually uses")
    reason: str | None = None
    test_top1: float | None = None


class VersionOverview(BaseModel):
    version: int
    status: ModelStatus
    reason: str | None = None
    variants: list[VariantOverview] = Field(default_factory=list)


class ModelOverview(BaseModel):
    name: str
    status: ModelStatus
    reason: str | None = Field(None, description="why the model (or a version of it) is unavailable")
    architecture: str | None = None
    family: str | None = Field(None, description="the architecture's family (resnet, vgg, ...)")
    paper: PaperRecord | None = Field(None, description="the paper that introduced the architecture")
    description: str | None = None
    quick: bool | None = Field(None, description="a --quick smoke-test model, not a trained one")
    served_versions: list[int] = Field(default_factory=list)
    latest_version: int | None = Field(None, description="the version /predict uses by default")
    versions: list[VersionOverview] = Field(default_factory=list)
    provider: str | None = None
    input: InputSpec | None = None
    num_classes: int | None = None
    accuracy: float | None = Field(None, description="test top-1 of the default version's fp32 variant")
    handwriting: dict[str, float] | None = Field(
        None,
        description="a digit model's fp32 top-1 on the handwriting check set (digits drawn as pen strokes, "
        "never trained on), per polarity: light-on-dark as on a canvas, dark-on-light as a photo of paper",
        examples=[{"light-on-dark": 91.5, "dark-on-light": 90.0}],
    )
    params: int | None = None
    macs: int | None = None
    batching: Batching | None = None
    samples: int = Field(0, description="sample images of the latest version (GET /models/{name}/samples)")


class ModelList(BaseModel):
    models: list[ModelOverview]


class SampleOverview(BaseModel):
    file: str = Field(examples=["0-0.png"])
    label: str | None = Field(description="its class, or null for an unlabelled photograph", examples=["0"])
    index: int | None = Field(description="its class index into the model's labels", examples=[0])
    url: str = Field(
        description="where the PNG is (relative to the server)", examples=["/models/lenet5/samples/0-0.png?version=1"]
    )


class SampleList(BaseModel):
    """A version's sample images: real held-out test images, never training images."""

    model: str
    version: int
    samples: list[SampleOverview]


# --- predict ----------------------------------------------------------------------------------


class PredictOptions(BaseModel):
    """Options of /predict, as query parameters or (for JSON bodies) fields of the body."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="model name (default: the only model, or CNNSERVE_DEFAULT_MODEL)")
    version: int | None = Field(None, ge=1, description="model version (default: the latest served)")
    variant: Precision | None = Field(None, description="fp32, int8 or fp16 (default: fp32)")
    top_k: int = Field(5, ge=1, le=1000, description="classes returned per input")
    probabilities: bool = Field(False, description="also return every class probability")


# OpenAPI's "byte" format: the schema says what the handlers accept (anything else is a 422 invalid_base64).
Base64Image = Annotated[str, Field(json_schema_extra={"format": "byte"})]
BASE64_IMAGE_SCHEMA: dict[str, Any] = {"type": "string", "format": "byte"}


class PredictRequest(PredictOptions):
    """A JSON body: base64 images, or a raw tensor already preprocessed (NCHW or CHW float32)."""

    images: list[Base64Image] | None = Field(
        None, description="base64 images (a data: URL prefix is accepted)", examples=[["iVBORw0KGgoAAAANSUhEUgAA..."]]
    )
    tensor: list[Any] | None = Field(
        None, description="nested lists, (N, C, H, W) or (C, H, W), already normalised like the card's input spec"
    )

    @model_validator(mode="after")
    def _one_payload(self) -> PredictRequest:
        if (self.images is None) == (self.tensor is None):
            raise ValueError("give exactly one of 'images' (base64) or 'tensor'")
        if self.images is not None and not self.images:
            raise ValueError("'images' is empty")
        return self


class ClassScore(BaseModel):
    label: str
    index: int
    probability: float


class Prediction(BaseModel):
    top_k: list[ClassScore]
    probabilities: list[float] | None = None


class Timings(BaseModel):
    decode_ms: float = Field(description="reading and decoding the inputs")
    queue_ms: float = Field(description="waiting in the batch queue")
    inference_ms: float = Field(description="the session.run this request rode in")
    total_ms: float = Field(description="from the start of the handler to the encoded response")
    batch_size: int = Field(description="inputs in that session.run (this request's and others')")


class PredictResponse(BaseModel):
    model: str
    version: int
    variant: Precision
    provider: str
    predictions: list[Prediction] = Field(description="one per input, in order")
    timings: Timings


class PreprocessResponse(BaseModel):
    """What the model sees: the input tensor of an image, its statistics, and the tensor as a picture."""

    model: str
    version: int
    shape: list[int] = Field(description="C, H, W: the model's input, after resize and crop", examples=[[1, 32, 32]])
    mean: float = Field(description="mean of the normalised tensor the model gets")
    std: float = Field(description="standard deviation of that tensor")
    min: float
    max: float
    image: str = Field(
        description="data:image/png;base64 URL of the tensor mapped back to pixels (x * std + mean, clipped to "
        "[0, 1]) at the model's input size: exactly the crop the model gets",
        examples=["data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA..."],
    )
