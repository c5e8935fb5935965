"""``import-onnx --eval FOLDER``: an imported model's accuracy, and its INT8 and float16 variants judged on it.

``FOLDER`` holds a folder of images per class, named as the labels (``FOLDER/daisy/*.jpg``). Its images
are prepared as the service prepares them (the card's resize, crop, mean and std, through the same
evaluation transforms as a build's test split) and split in two, alternately: one half calibrates the
INT8 activation ranges, the other measures every variant's top-1, so that no variant is judged on the
images that made it. A variant is published when its top-1 is within ``max_accuracy_drop`` points of
float32's (the build's rule, :class:`export.quantize.QuantizeOptions`); otherwise the card keeps it with
the reason and its file is not published.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from repository import VARIANT_FILES, InputSpec, Variant
from repository.card import AccuracyRecord, Precision, VariantJudgement
from repository.publish import file_variant

from .measure import evaluate_onnx, make_session
from .onnx_export import check_onnx
from .quantize import QuantizeOptions, quantize_int8

__all__ = ["Evaluated", "labelled_images", "variants_judged"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


@dataclass
class Evaluated:
    """The variants of an imported version, with the accuracy of each and the judgement of the reduced ones."""

    variants: dict[Precision, Variant] = field(default_factory=dict)
    accuracy: dict[Precision, AccuracyRecord] = field(default_factory=dict)
    judgements: dict[Precision, VariantJudgement] = field(default_factory=dict)


def labelled_images(folder: Path, labels: list[str], spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """The images of ``folder/<label>/`` as the model's input tensors, and their class indices."""
    from training.data import ImageFolder
    from training.transforms import CenterCrop, Compose, Normalize, Resize, ToTensor

    if not folder.is_dir():
        raise ValueError(f"--eval {folder}: not a folder of class folders")
    unknown = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in labels)
    if unknown:
        raise ValueError(f"--eval {folder}: folder(s) {', '.join(unknown)} name no label of the model")
    pipeline = Compose(
        [Resize(spec.resize, spec.interpolation), CenterCrop(spec.crop), ToTensor(), Normalize(spec.mean, spec.std)]
    )
    samples = [
        (path, index)
        for index, label in enumerate(labels)
        for path in (sorted((folder / label).iterdir()) if (folder / label).is_dir() else [])
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    if len(samples) < 2:
        raise ValueError(f"--eval {folder}: {len(samples)} image(s) in its class folders; at least 2 are needed")
    dataset = ImageFolder(samples, pipeline, spec.color_mode)  # the build's reader: a bad file is skipped, logged
    images, targets = zip(*(dataset[i] for i in range(len(dataset))), strict=True)
    return np.stack([x.numpy() for x in images]).astype(np.float32), np.array(targets)


def _float16(fp32: Path) -> onnx.ModelProto:
    """The graph in float16 (weights and arithmetic), its input and outputs still float32 (Casts at both ends)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    converted = OnnxModel(convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True))
    converted.topological_sort()  # the converter appends the input's Cast after the nodes that read it
    return converted.model


def variants_judged(
    fp32: Path, input_name: str, images: np.ndarray, targets: np.ndarray, options: QuantizeOptions = QuantizeOptions()
) -> Evaluated:
    """float32's accuracy, and each variant of ``options.variants`` made beside ``fp32``, measured and judged."""
    calibration, held_out, truth = images[0::2], images[1::2], targets[1::2]
    reference = evaluate_onnx(make_session(fp32), held_out, truth)
    result = Evaluated(variants={"fp32": file_variant(fp32, "fp32", test_top1=reference.top1)})
    result.accuracy["fp32"] = reference
    for precision in options.variants:
        path = fp32.with_name(VARIANT_FILES[precision])
        if precision == "int8":
            quantize_int8(fp32, path, calibration, options=options, input_name=input_name)
        else:
            onnx.save(_float16(fp32), str(path))
        check_onnx(path)
        accuracy = evaluate_onnx(make_session(path), held_out, truth)
        change = round(float(accuracy.top1) - float(reference.top1), 3)
        published = change >= -options.max_accuracy_drop
        reason = (
            None if published else f"top-1 {change:+.2f} points against float32 (at most -{options.max_accuracy_drop})"
        )
        result.accuracy[precision] = accuracy
        result.judgements[precision] = VariantJudgement(top1_change=change, published=published)
        result.variants[precision] = (
            file_variant(path, precision, test_top1=accuracy.top1)
            if published
            else file_variant(path, precision, published=False, reason=reason, test_top1=accuracy.top1)
        )
    return result
