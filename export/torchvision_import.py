"""``python -m export import-torchvision``: publish a zoo network with torchvision-format weights.

Steps 3-5 of a build (:mod:`export.pipeline`) for weights trained elsewhere: ImageNet
preprocessing, labels from a file (or the class indices), and scikit-learn's two sample
photographs for the parity check and as the version's (unlabelled) sample images, since there
is no labelled test set to measure accuracy on.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch import nn

from repository import InputSpec, Repository, sha256_file
from repository.card import TrainingRecord

from .jobs import ExportJob, architecture
from .options import BuildOptions
from .pipeline import export_and_publish

__all__ = ["import_torchvision"]

log = logging.getLogger(__name__)


def import_torchvision(
    arch: str,
    weights: str | os.PathLike[str],
    *,
    labels: str | os.PathLike[str] | None = None,
    name: str | None = None,
    options: BuildOptions = BuildOptions(),
) -> int:
    """Publish ``arch`` with torchvision-format ``weights`` (ImageNet preprocessing); returns the version.

    The weights are loaded strictly (:func:`training.weights.load_torchvision_weights`: every
    missing or unexpected key is listed). Without a labelled test set the INT8 variant is not
    published; float16 is published when it agrees with float32 on sample photographs.
    """
    import models
    from training.data import HeldOutImage

    weights = Path(weights)
    model, model_options = _load(arch, weights)
    spec = _imagenet_input(models.get_model_info(arch))
    photos = _photos()
    job = ExportJob(
        name=name or arch,
        model=model,
        architecture=architecture(model, model_options),
        labels=_labels_file(Path(labels) if labels else None, model_options["num_classes"]),
        input=spec,
        training=TrainingRecord(
            source="torchvision",
            weights=str(weights),
            source_sha256=sha256_file(weights),
            data="ImageNet-1k (torchvision weights; accuracy not measured here)",
            labels_file=str(labels) if labels else None,
        ),
        description=f"{model.info.description} torchvision-format weights imported from {weights.name}.",
        real_inputs=_preprocessed(photos, spec),
        samples=[HeldOutImage(photo, None, None) for photo in photos],
    )
    return export_and_publish(job, Repository(options.repository), options)


def _load(arch: str, weights: Path) -> tuple[nn.Module, dict[str, Any]]:
    """``arch`` with ``weights`` loaded strictly, in eval mode, and the options it is served with."""
    import models
    from training.weights import build_model, load_state_file, load_torchvision_weights

    info = models.get_model_info(arch)
    if info.torchvision is None:
        fits = [n for n in models.list_models() if models.get_model_info(n).torchvision == arch]
        hint = f"; did you mean {', '.join(fits)}?" if fits else ""
        raise ValueError(f"{arch} has no torchvision weight layout{hint}")
    state = load_state_file(weights)
    head = state.get(f"{info.classifier}.weight")
    model_options: dict[str, Any] = {"num_classes": int(head.shape[0]) if head is not None else info.num_classes}
    if any(k.startswith(("aux1.", "aux2.")) for k in state):
        model_options["aux_logits"] = True  # torchvision's GoogLeNet files keep the auxiliary heads
    model = build_model(arch, model_options)
    load_torchvision_weights(model, state)
    model.eval()
    if model_options.get("aux_logits"):
        model_options["aux_logits"] = False  # dropped for serving (serving_copy)
    return model, model_options


def _imagenet_input(info: Any) -> InputSpec:
    """ImageNet preprocessing at the network's canonical size (``info``: its ``models`` info): 256 -> 224 crop."""
    crop = info.input_size[1]
    return InputSpec(
        shape=list(info.input_size),
        color_mode="RGB" if info.input_size[0] == 3 else "L",
        resize=math.floor(crop / 0.875),
        crop=crop,
        interpolation="bilinear",
        mean=list(info.mean),
        std=list(info.std),
    )


def _labels_file(path: Path | None, num_classes: int) -> list[str]:
    if path is None:
        log.warning("no --labels: naming the %d classes by their index", num_classes)
        return [str(i) for i in range(num_classes)]
    try:
        labels = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError as err:
        raise ValueError(f"cannot read labels file {path}: {err}") from None
    if len(labels) != num_classes:
        raise ValueError(
            f"{path} has {len(labels)} labels but the weights have {num_classes} classes; "
            "give one label per line, in class order"
        )
    return labels


def _photos() -> list[Image.Image]:
    """scikit-learn's two bundled photographs (a temple in China, a flower), 640x427 RGB."""
    from sklearn.datasets import load_sample_images

    return [Image.fromarray(array) for array in load_sample_images().images]


def _preprocessed(photos: list[Image.Image], spec: InputSpec) -> np.ndarray:
    """``photos`` and their mirror images, preprocessed as ``spec`` says."""
    from training.transforms import eval_transform

    transform = eval_transform(
        spec.crop, spec.mean, spec.std, crop_pct=spec.crop / spec.resize, interpolation=spec.interpolation
    )
    out = []
    for photo in photos:
        image = photo.convert(spec.color_mode)
        out.append(transform(image).numpy())
        out.append(transform(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)).numpy())
    return np.stack(out).astype(np.float32)
