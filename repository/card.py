"""The model card: what ``<repository>/<name>/model.json`` holds, as typed, frozen records.

Written by ``export`` (last, atomically), read by ``service`` and ``export verify``. Torch-free:
pydantic and the standard library only.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from .summary import SummaryRecord

__all__ = [
    "CARD_FORMAT",
    "SAMPLES_DIR",
    "VARIANT_FILES",
    "AccuracyRecord",
    "AccuracySource",
    "Agreement",
    "Architecture",
    "Batching",
    "Digests",
    "DigitNormalization",
    "FoldedPooling",
    "InputSpec",
    "Latencies",
    "LayerOutput",
    "LayerOutputs",
    "ModelCard",
    "Number",
    "ParityRecord",
    "Precision",
    "SampleImage",
    "SpeedRecord",
    "TensorSpec",
    "TrainingMetrics",
    "TrainingRecord",
    "Variant",
    "VariantJudgement",
    "VerificationRecord",
    "VersionCard",
]

CARD_FORMAT = 1
VARIANT_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}
# A version's sample images: <name>/<version>/samples/<file>.
SAMPLES_DIR = "samples"

Precision = Literal["fp32", "int8", "fp16"]
# Whose test accuracy: PyTorch's at the end of training, or a precision's ONNX file.
AccuracySource = Literal["pytorch"] | Precision
# A number as its writer gave it: pydantic's float would read a card's 1 as 1.0 and so change the card's digest.
Number = float | int
# Median latency in milliseconds per batch size, keyed ``latency_ms_b{n}`` (the sizes the build measured).
Latencies = dict[str, Number]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TensorSpec(_Record):
    """One input or output of the ONNX graph; -1 marks the dynamic batch dimension."""

    name: str
    dtype: str = "float32"
    shape: list[int]


class _AsWritten(_Record):
    """A record that writes back exactly the fields it was given, explicit ``None`` included.

    Cards carry digests of their own JSON (``repository.publish.card_digests``): a card read and
    written again must not gain a ``null`` for a field its writer left out. Fields absent from an
    older card (``machine``, ``folded_pooling``) or from one source of training (a checkpoint or
    torchvision weights) stay absent.
    """

    @model_serializer(mode="wrap")
    def _given_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if key in self.model_fields_set}


class DigitNormalization(_Record):
    """How an image of a handwritten digit becomes the digits data set's picture of one (version 1).

    For networks trained on scikit-learn's digits, whose 8x8 values are NIST's counts of inked
    pixels in 4x4 blocks of a 32x32 bitmap the digit was fitted into. Done by the service to every
    image it is sent for such a model (tensors are taken as they are), in place of the plain resize
    and crop of :class:`InputSpec`:

    1. ``polarity``: grey; ``"auto"`` inverts an image whose border (``border`` of the shorter side)
       is lighter than mid-grey, so that ink is light on dark, as in the data set.
    2. Contrast: the border's median is the paper, the image's 99.5th percentile the ink; a pixel
       counts as inked above ``threshold`` of the way between them. No ink: the image is refused.
    3. The ink's bounding box, centred in a square of its longer side, is resampled (area) to
       ``frame`` x ``frame`` and thresholded at one half.
    4. Strokes thinner than ``stroke_width`` (frame pixels; estimated as twice the inked area over its
       perimeter) are thickened toward it by a round pen of up to ``max_thickening`` pixels, and the
       ink is fitted into the frame again.
    5. Each of ``resolution`` x ``resolution`` blocks becomes its share of inked pixels (0..1), then
       is resized (bilinear, as training did) to the input size and normalised with ``mean``/``std``.
    """

    version: Literal[1] = 1
    polarity: Literal["auto", "light-on-dark"] = "auto"
    border: float = 0.04
    threshold: float = 0.5
    frame: int = 32
    stroke_width: float = 4.7
    max_thickening: int = 3
    resolution: int = 8


class InputSpec(_Record):
    """How an image becomes the model's input tensor.

    Decode, convert to ``color_mode``, resize the shorter side to ``resize`` (bilinear),
    centre-crop ``crop`` x ``crop``, scale to [0, 1], subtract ``mean``, divide by ``std``,
    lay out as NCHW float32. A digit model's card adds ``digits`` (:class:`DigitNormalization`),
    which replaces the resize and crop; a card without it is written without it (as before it
    existed: the card's digest stays the same).
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
    digits: DigitNormalization | None = None

    @property
    def channels(self) -> int:
        return self.shape[0]

    @model_serializer(mode="wrap")
    def _digits_only_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if self.digits is None:
            data.pop("digits", None)
        return data


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


class TrainingMetrics(_AsWritten):
    """The test and validation figures of a checkpoint's training run (percent; the loss is cross-entropy)."""

    test_top1: Number | None = None
    test_top5: Number | None = None
    test_loss: Number | None = None
    val_top1: Number | None = None


class TrainingRecord(_AsWritten):
    """Where a version's weights came from.

    ``source`` "checkpoint" (``export build``) records the checkpoint, its data, recipe, metrics and
    machine; "torchvision" (``export import-torchvision``) the weights file and its labels file. A
    version published by another tool may record nothing (``{}``).
    """

    source: Literal["checkpoint", "torchvision"] | None = None
    checkpoint: str | None = None
    weights: str | None = None
    source_sha256: str | None = None
    data: str | None = None
    labels_file: str | None = None
    split_sizes: dict[str, int] | None = None
    epochs: int | None = None
    best_epoch: int | None = Field(None, description="1-based, as in metrics.json")
    # training.recipes.Recipe.to_dict(): the training package's own record, compared whole.
    recipe: dict[str, Any] | None = None
    metrics: TrainingMetrics | None = None
    seconds: Number | None = None
    trained_at: str | None = None
    seed: int | None = None
    device: str | None = None
    machine: str | None = None
    torch: str | None = None
    quick: bool | None = None


class Agreement(_AsWritten):
    """How closely one model's logits follow another's on ``count`` inputs."""

    count: int
    max_abs_diff: Number
    top1_agreement: Number


class ParityRecord(_AsWritten):
    """ONNX Runtime against PyTorch (float32): per kind of input, and overall against the bound.

    ``passed``: ``max_abs_diff`` within ``tolerance`` (``max(atol, rtol * max_abs_logit)``) and
    every top-1 the same. ``real`` is absent when there were no real inputs to feed.
    """

    atol: Number
    rtol: Number
    random: Agreement
    real: Agreement | None = None
    batch_sizes: list[int]
    max_abs_diff: Number
    top1_agreement: Number
    max_abs_logit: Number
    tolerance: Number
    passed: bool


class AccuracyRecord(_AsWritten):
    """Test accuracy in percent on ``count`` images (top-5 with at least 5 classes)."""

    top1: Number
    count: int | None = None
    top5: Number | None = None


class VariantJudgement(_AsWritten):
    """Why a reduced-precision variant was published or not.

    ``top1_change`` (points against float32) when there is labelled test data; otherwise a float16
    variant is judged on its top-1 agreement with float32 (``vs_fp32``) and ``note`` says so.
    """

    vs_fp32: Agreement | None = None
    top1_change: Number | None = None
    note: str | None = None
    published: bool


class SpeedRecord(_AsWritten):
    """The build's rough latencies through ONNX Runtime (float16 is not timed: a CPU only emulates it)."""

    device: str
    threads: int | None
    fp32: Latencies
    int8: Latencies | None = None


class FoldedPooling(_AsWritten):
    """The replicating pooling folded into ``layer`` at export (``export.onnx_export.fold_replicated_pooling``)."""

    # In the order the cards have always listed them (sorted: they come from the ONNX file's JSON metadata).
    grid: list[int]
    layer: str
    weights_after: int
    weights_before: int


class Digests(_AsWritten):
    """sha256 of the card without its versions, and of this version without its digests."""

    card: str
    version: str


class VerificationRecord(_AsWritten):
    """What the build checked and measured before it published a version, and the digests that seal it.

    ``accuracy`` is keyed by precision, plus "pytorch" for the figures of training; ``variants``
    judges the reduced-precision ones. ``handwriting`` is a digit model's float32 top-1 on the
    handwriting check set (digits drawn as pen strokes, never trained on), keyed by polarity
    ("light-on-dark" as on the page's canvas, "dark-on-light" as a photo of paper), each image
    prepared by the card's ``input.digits``. A version published by another tool may record nothing.
    """

    onnx_checker: dict[Precision, Literal["passed"]] | None = None
    parity: ParityRecord | None = None
    accuracy: dict[AccuracySource, AccuracyRecord] | None = None
    handwriting: dict[str, AccuracyRecord] | None = None
    variants: dict[Precision, VariantJudgement] | None = None
    speed: SpeedRecord | None = None
    # BuildOptions.export_key() of export.options (export, quantize and batching options), compared whole to
    # decide a rebuild: typing it here would copy the export package's option dataclasses.
    export_options: dict[str, Any] | None = None
    folded_pooling: FoldedPooling | None = None
    tools: dict[str, str] | None = Field(None, description="versions of torch, onnx and onnxruntime")
    opset: int | None = None
    digests: Digests | None = None

    def top1(self, source: AccuracySource) -> float | None:
        """The test top-1 measured for ``source``, if it was."""
        record = (self.accuracy or {}).get(source)
        return None if record is None else record.top1


class SampleImage(_Record):
    """A real held-out image published with a version (``<version>/samples/<file>``, a PNG).

    A test-split image of the training data, never a training image; ``label`` and ``index`` are its
    class, or ``None`` for an unlabelled photograph (weights imported without a test set).
    """

    file: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.png$")
    label: str | None
    index: int | None = Field(description="class index into the card's labels")
    sha256: str


class LayerOutput(_AsWritten):
    """One layer's output as a tensor of the version's float32 ONNX file, checked against PyTorch.

    ``name`` is the module's name in the summary; the k-th call (k >= 2) of a module called more
    than once (ResNet's shared ReLU) is ``name#k``. ``holds`` names the layer whose output the
    tensor really holds when the export merged this one into it: a convolution followed by batch
    norm becomes one Conv whose output is the batch norm's (and whose ``weight`` has it folded in).
    ``block``: an outermost module that is not a container (resnet's ``layer1.0``, an inception
    module, vgg's ``features.3``), the default of the activation views. ``max_abs_diff`` is ONNX
    Runtime against the forward hook's output, within ``tolerance``
    (``max(atol, rtol * max|output|)``, the bound of the logits' parity check).
    """

    name: str
    type: str
    tensor: str
    shape: list[int] = Field(description="per input, without the batch dimension")
    block: bool = False
    holds: str | None = None
    weight: str | None = Field(None, description="convolutions: the initializer of the served weights")
    max_abs_diff: Number
    tolerance: Number


class LayerOutputs(_AsWritten):
    """Where the layers' outputs are in ``file`` (recorded by ``export.layers`` at build time).

    ``inputs`` of ``kind`` "real" (test images) or "random" were compared; ``left_out`` says, per
    layer, why it has no tensor (an identity the export removed, a pooling folded away).
    """

    file: str
    kind: Literal["real", "random"]
    inputs: int
    atol: Number
    rtol: Number
    layers: list[LayerOutput]
    left_out: dict[str, str] = Field(default_factory=dict)

    def find(self, name: str) -> LayerOutput | None:
        return next((layer for layer in self.layers if layer.name == name), None)


class VersionCard(_Record):
    version: int
    created: str
    variants: dict[Precision, Variant]
    verification: VerificationRecord = VerificationRecord()
    training: TrainingRecord = TrainingRecord()
    # Left out when empty: a version published before samples existed must write back the JSON its
    # digests cover, without a "samples": [].
    samples: list[SampleImage] = Field(default_factory=list, exclude_if=lambda samples: not samples)
    # Absent from versions published before the layers were recorded (and never written as null:
    # the card's digests are of its JSON).
    layer_outputs: LayerOutputs | None = Field(None, exclude_if=lambda layers: layers is None)


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
