"""An :class:`ExportJob`: one network ready to export, with its description and the data to check it on."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from repository import Architecture, DigitNormalization, InputSpec, sha256_file
from repository.card import AccuracyRecord, TrainingMetrics, TrainingRecord

from .handwriting import CARD_PER_DIGIT, check_arrays
from .options import BuildOptions

if TYPE_CHECKING:
    from training.data import HeldOutImage

__all__ = ["ExportJob", "architecture", "input_spec", "job_from_checkpoint"]

# The figures of training the card keeps (training.train's metrics hold many more).
_METRICS = ("test_top1", "test_top5", "test_loss", "val_top1")


@dataclass
class ExportJob:
    """One network ready to export: weights loaded, described, with the data to check it on.

    ``model`` has ``requires_grad`` as training left it (every parameter for weights trained
    elsewhere): the card's summary reports that trainable/frozen split.
    ``test`` (images, targets) measures accuracy; ``calibration`` are training images for INT8;
    ``real_inputs`` feed the parity check (test images when there are some); ``reference`` is
    the test accuracy PyTorch reached in training; ``samples`` are published with the version
    (:mod:`export.samples`): held-out images as they are stored, never training images.
    """

    name: str
    model: nn.Module
    architecture: Architecture
    labels: list[str]
    input: InputSpec
    training: TrainingRecord
    description: str = ""
    quick: bool = False
    test: tuple[np.ndarray, np.ndarray] | None = None
    calibration: np.ndarray | None = None
    real_inputs: np.ndarray | None = None
    reference: AccuracyRecord | None = None
    samples: list[HeldOutImage] = field(default_factory=list)
    # A digit model's handwriting check set per polarity, prepared as its card says (inputs, labels).
    handwriting: dict[str, tuple[np.ndarray, np.ndarray]] | None = None


def input_spec(preprocessing: Any) -> InputSpec:
    """The card's :class:`InputSpec` for a ``training.data.Preprocessing``.

    ``stretch`` (digits: the whole square image to ``image_size``) is, for the square images it
    is used on, the same as resizing the shorter side to ``image_size`` and cropping it whole.
    A digits task's ``digits`` normalisation becomes the card's ``input.digits``.
    """
    size = int(preprocessing.image_size)
    resize = size if preprocessing.resize == "stretch" else math.floor(size / preprocessing.crop_pct)
    digits = getattr(preprocessing, "digits", None)
    return InputSpec(
        shape=[preprocessing.channels, size, size],
        color_mode=preprocessing.color_mode,
        resize=resize,
        crop=size,
        interpolation=preprocessing.interpolation,
        mean=list(preprocessing.mean),
        std=list(preprocessing.std),
        **({"digits": DigitNormalization.model_validate(digits)} if digits else {}),
    )


def architecture(model: nn.Module, options: dict[str, Any]) -> Architecture:
    """The card's :class:`Architecture` of a zoo network built with ``options``."""
    info = model.info
    return Architecture(name=info.name, family=info.family, paper=str(info.paper), options=dict(options))


def job_from_checkpoint(checkpoint: Path, options: BuildOptions, source_sha: str | None = None) -> ExportJob:
    """An :class:`ExportJob` for one of our checkpoints, with its test data and training images."""
    import torch

    from training.data import held_out_images, load_data
    from training.weights import load_checkpoint, restore_trainable

    # Checkpoints record torch.__version__, a str subclass that weights_only loading must be told about.
    with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
        model, ckpt = load_checkpoint(checkpoint)
    meta = ckpt.meta
    restore_trainable(model, meta)  # the card's summary says what training trained
    prep = meta.preprocessing
    splits = load_data(meta.dataset, image_size=prep.image_size, in_channels=prep.channels, preprocessing=prep)
    test = _arrays(splits.test)
    calibration, _ = _arrays(splits.train, options.quantize.calibration_images)
    reference = {k[len("test_") :]: float(meta.metrics[k]) for k in ("test_top1", "test_top5") if k in meta.metrics}
    spec = input_spec(splits.preprocessing)
    quick_note = " QUICK BUILD (--quick: a moment of training for tests): not a real model." if options.quick else ""
    return ExportJob(
        name=meta.model,
        model=model,
        architecture=architecture(model, meta.model_options),
        labels=list(meta.labels),
        input=spec,
        training=_training_record(checkpoint, meta, splits.sizes, source_sha or sha256_file(checkpoint), options),
        description=f"{model.info.description} Trained on {meta.dataset}.{quick_note}",
        quick=options.quick,
        test=test,
        calibration=calibration,
        real_inputs=test[0],
        reference=AccuracyRecord(**reference) if reference else None,
        samples=held_out_images(meta.dataset),
        handwriting=check_arrays(spec, 2 if options.quick else CARD_PER_DIGIT) if spec.digits else None,
    )


def _training_record(
    checkpoint: Path, meta: Any, split_sizes: dict[str, int], source_sha: str, options: BuildOptions
) -> TrainingRecord:
    """Where the checkpoint's weights came from: its data, recipe, figures and machine (``meta``: its metadata)."""
    metrics = dict(meta.metrics)
    return TrainingRecord(
        source="checkpoint",
        checkpoint=str(checkpoint),
        source_sha256=source_sha,
        data=meta.dataset,
        split_sizes=metrics.get("split_sizes", split_sizes),
        epochs=metrics.get("epochs", meta.epoch),
        best_epoch=metrics.get("best_epoch"),
        recipe=meta.recipe.to_dict(),
        metrics=TrainingMetrics(**{k: metrics[k] for k in _METRICS if k in metrics}),
        seconds=metrics.get("seconds"),
        trained_at=datetime.fromtimestamp(checkpoint.stat().st_mtime, UTC).isoformat(timespec="seconds"),
        seed=metrics.get("seed"),
        device=metrics.get("device"),
        machine=metrics.get("machine"),
        torch=metrics.get("torch"),
        quick=options.quick,
    )


def _arrays(dataset: Any, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images, targets) of a dataset of :mod:`training.data`, the first ``limit`` of them."""
    import torch

    from training.data import TensorImages, eval_loader

    n = len(dataset) if limit is None else min(limit, len(dataset))
    if isinstance(dataset, TensorImages):
        x, y = dataset.batch(torch.arange(n))
        return x.numpy().astype(np.float32, copy=False), y.numpy()
    xs, ys, seen = [], [], 0
    for x, y in eval_loader(dataset, 64):
        xs.append(x.numpy())
        ys.append(y.numpy())
        seen += len(y)
        if seen >= n:
            break
    return np.concatenate(xs)[:n].astype(np.float32, copy=False), np.concatenate(ys)[:n]
