"""Response bodies of the views: feature maps, filters and occlusion maps."""

from __future__ import annotations

from pydantic import BaseModel, Field

from repository import Precision

__all__ = [
    "ActivationsResponse",
    "ChannelImage",
    "FilterImage",
    "FiltersResponse",
    "LayerActivations",
    "OcclusionResponse",
    "ViewTimings",
]

_PNG = "a PNG as a data URL (data:image/png;base64,...), which an <img> shows as it is"


class ViewTimings(BaseModel):
    decode_ms: float = Field(0.0, description="reading and decoding the input")
    inference_ms: float = Field(description="ONNX Runtime (occlusion: every batch, one after the other)")
    encode_ms: float = Field(description="statistics and images")
    total_ms: float


class ChannelImage(BaseModel):
    index: int = Field(description="the channel's index in the layer's output")
    mean_abs: float = Field(description="mean |value| over the channel: the order of the list, most active first")
    max: float
    image: str | None = Field(None, description=f"{_PNG}; the layer's scale; null past CNNSERVE_MAX_VIEW_BYTES")


class LayerActivations(BaseModel):
    name: str = Field(description="as in the summary (k-th call of a shared module: name#k)")
    type: str
    tensor: str = Field(description="the ONNX tensor read")
    holds: str | None = Field(None, description="the layer whose output the tensor holds (a folded batch norm)")
    shape: list[int] = Field(description="per input: C, H, W for feature maps")
    min: float
    max: float
    mean: float
    zeros: float = Field(description="share of exact zeros (every layer: after a ReLU it is the share switched off)")
    scale: tuple[float, float] = Field(
        description="the values that black and white stand for in every image of the layer"
    )
    channels: int = Field(description="channels in the layer (feature maps), or values (vectors)")
    images: list[ChannelImage] = Field(
        default_factory=list, description="feature maps: the most active channels first, at most ?channels"
    )
    vector: str | None = Field(None, description=f"a layer without a (C, H, W) map: its values in rows, {_PNG}")
    omitted: str | None = Field(None, description="why images were left out")


class ActivationsResponse(BaseModel):
    model: str
    version: int
    variant: Precision = Field(description="the file read: float32, whose tensors the card records")
    provider: str
    input_shape: list[int]
    layers: list[LayerActivations]
    note: str | None = Field(None, description="what the default left out (more blocks than CNNSERVE_MAX_VIEW_LAYERS)")
    bytes: int = Field(description="image bytes in this answer")
    timings: ViewTimings


class FilterImage(BaseModel):
    index: int = Field(description="the output channel")
    norm: float = Field(description="L2 norm of the filter's weights")
    rgb: str | None = Field(None, description=f"a filter over 3 input channels as one colour image, {_PNG}")
    channels: list[str] = Field(default_factory=list, description=f"per input channel, {_PNG}")


class FiltersResponse(BaseModel):
    model: str
    version: int
    layer: str
    type: str
    weight: str = Field(description="the ONNX initializer read")
    holds: str | None = Field(
        None, description="the batch norm folded into these weights at export (each filter scaled by it)"
    )
    shape: list[int] = Field(description="out channels, in channels per group, kernel height, kernel width")
    scale: float = Field(description="max |weight| of the layer: white is +scale, black -scale, grey 0")
    filters: list[FilterImage]
    filters_total: int
    in_channels_shown: int
    convolutions: list[str] = Field(description="every convolution ?layer= takes")
    omitted: str | None = None
    bytes: int
    timings: ViewTimings


class OcclusionResponse(BaseModel):
    model: str
    version: int
    variant: Precision
    provider: str
    class_index: int = Field(description="the class explained: the unoccluded top-1, or ?class=")
    label: str
    baseline: float = Field(description="its probability on the unoccluded input")
    patch: int = Field(description="side of the square patch, in input pixels (after resize and crop)")
    stride: int
    fill: float = Field(description="the patch's value in the normalised input: 0, the mean pixel")
    rows: int
    cols: int
    y: list[int] = Field(description="top edge of the patch, per row of the map")
    x: list[int] = Field(description="left edge of the patch, per column of the map")
    drop: list[list[float]] = Field(description="rows x cols: baseline minus the probability with the patch there")
    copies: int
    batches: int = Field(description="requests of up to max_batch_size copies sent to the model's batcher")
    timings: ViewTimings
