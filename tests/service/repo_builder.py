"""A tiny model repository for the service's tests, written with ``export.repository``.

The networks come from the zoo with seeded random weights (no training): what the service
tests is that it serves the graph faithfully, not that the graph is accurate. Each version gets
an fp32 ONNX file (legacy TorchScript exporter: fast), a dynamically quantised int8 file, and an
unpublished fp16 variant with its reason, like ``export`` writes them.
"""

from __future__ import annotations

import io
import shutil
import warnings
from datetime import UTC, datetime
from pathlib import Path

import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from torch import nn

import models
from repository import (
    Architecture,
    Batching,
    InputSpec,
    ModelCard,
    Repository,
    SummaryRecord,
    TensorSpec,
    Variant,
    VersionCard,
    sha256_file,
)

DIGITS = [str(i) for i in range(10)]

# name -> (zoo network, builder options, colour mode, resize, crop, mean, std)
SPECS = {
    "lenet5": ("lenet5", {}, "L", 32, 32, [0.5], [0.5]),
    "lenet5-rgb": ("lenet5", {"in_channels": 3}, "RGB", 36, 32, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
}


class Overflowing(nn.Module):
    """Logits of 1e30 times the first ten pixels: finite for ordinary inputs, ±Inf (NaN probabilities)
    from a pixel of 3.4e8 on, exactly on any machine. A model whose arithmetic overflows on some
    finite inputs, as a float16 variant does beyond ±65,504."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :10] * 1e30


class _WithProbabilities(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(x)
        return logits, torch.softmax(logits, dim=1)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _export(net: nn.Module, shape: tuple[int, ...], path: Path) -> None:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter: fast, fine for tiny nets
        _export_legacy(net, shape, buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


def _export_legacy(net: nn.Module, shape: tuple[int, ...], buf: io.BytesIO) -> None:
    torch.onnx.export(
        _WithProbabilities(net).eval(),
        torch.zeros(1, *shape),
        buf,
        input_names=["input"],
        output_names=["logits", "probabilities"],
        opset_version=17,
        dynamo=False,
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}, "probabilities": {0: "batch"}},
    )


def _variant(path: Path, precision: str) -> Variant:
    return Variant(precision=precision, file=path.name, sha256=sha256_file(path), bytes=path.stat().st_size)


def write_version(root: Path, name: str, version: int, seed: int, net: nn.Module | None = None) -> VersionCard:
    """Export version ``version`` of ``name`` (weights drawn with ``seed``) and return its card entry.

    ``net`` (an :class:`Overflowing`, say) replaces the zoo network; its graph is published as the
    fp16 variant too (named so, computed in float32: the service judges a variant by its outputs).
    """
    arch, options, *_ = SPECS[name]
    torch.manual_seed(seed)
    graph = (net or models.create_model(arch, **options)).eval()
    repo = Repository(root)
    fp32 = repo.variant_path(name, version, "fp32")
    _export(graph, _input_shape(name), fp32)
    int8 = repo.variant_path(name, version, "int8")
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    variants = {"fp32": _variant(fp32, "fp32"), "int8": _variant(int8, "int8")}
    if net is not None:
        fp16 = repo.variant_path(name, version, "fp16")
        shutil.copyfile(fp32, fp16)
        variants["fp16"] = _variant(fp16, "fp16")
    else:
        variants["fp16"] = Variant(
            precision="fp16", file="model.fp16.onnx", published=False, reason="not built by the tests"
        )
    return VersionCard(version=version, created=_now(), variants=variants)


def _input_shape(name: str) -> tuple[int, int, int]:
    _, _, mode, _, crop, *_ = SPECS[name]
    return (3 if mode == "RGB" else 1, crop, crop)


def write_model(
    root: Path,
    name: str,
    versions: dict[int, int],
    *,
    max_batch_size: int = 16,
    delay_us: int = 2000,
    net: nn.Module | None = None,
) -> ModelCard:
    """Write ``name`` with ``versions`` ({version: seed}) and its card (last, atomically); ``net``: write_version."""
    arch, options, mode, resize, crop, mean, std = SPECS[name]
    shape = _input_shape(name)
    with torch.device("meta"):
        zoo = models.create_model(arch, **options)
        canonical = models.create_model(arch)
    info = models.get_model_info(arch)
    card = ModelCard(
        name=name,
        description=f"{arch} with random weights, for the service's tests",
        architecture=Architecture(name=arch, family=info.family, paper=str(info.paper), options=options),
        labels=DIGITS,
        input=InputSpec(shape=list(shape), color_mode=mode, resize=resize, crop=crop, mean=mean, std=std),
        inputs=[TensorSpec(name="input", shape=[-1, *shape])],
        outputs=[TensorSpec(name="logits", shape=[-1, 10]), TensorSpec(name="probabilities", shape=[-1, 10])],
        batching=Batching(max_batch_size=max_batch_size, max_queue_delay_microseconds=delay_us),
        quick=True,
        versions={v: write_version(root, name, v, seed, net) for v, seed in versions.items()},
        summary=SummaryRecord.model_validate(models.summarize(zoo, shape, name=arch).to_dict()),
        canonical_summary=SummaryRecord.model_validate(
            models.summarize(canonical, info.input_size, name=arch).to_dict()
        ),
        created=_now(),
    )
    Repository(root).write_card(card)
    return card


def add_version(root: Path, name: str, version: int, seed: int) -> ModelCard:
    """Publish a new version of an existing model: files first, then the rewritten card."""
    repo = Repository(root)
    card = repo.load_card(name)
    versions = {**card.versions, version: write_version(root, name, version, seed)}
    new = card.model_copy(update={"versions": versions})
    repo.write_card(new)
    return new


def build_repository(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_model(root, "lenet5", {1: 0})
    write_model(root, "lenet5-rgb", {1: 1})
    return root


def copy_repository(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target
