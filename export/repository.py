"""The model repository on disk: the contract between export (writer) and service (reader).

Layout, after Triton's model repository::

    <repository>/<name>/model.json              the model card (ModelCard below)
    <repository>/<name>/config.pbtxt            Triton onnxruntime-backend configuration
    <repository>/<name>/<version>/model.onnx    float32 (+ model.int8.onnx, model.fp16.onnx)

This module is torch-free (pydantic and the standard library only): the service imports it.
A card is written last and atomically, so a reader that sees ``model.json`` sees a complete
model; each variant's sha256 in the card lets a reader detect a truncated or edited file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "CARD_FILE",
    "CARD_FORMAT",
    "NAME_PATTERN",
    "Architecture",
    "Batching",
    "InputSpec",
    "LayerRecord",
    "ModelCard",
    "Repository",
    "RepositoryError",
    "SummaryRecord",
    "TensorSpec",
    "Variant",
    "VersionCard",
    "sha256_file",
    "write_json_atomic",
]

CARD_FILE = "model.json"
TRITON_CONFIG_FILE = "config.pbtxt"
CARD_FORMAT = 1
# Model names become folder names: keep them to a safe alphabet, never a path.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
VARIANT_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}

Precision = Literal["fp32", "int8", "fp16"]


class RepositoryError(Exception):
    """The repository on disk does not match its cards (missing file, bad hash, invalid card)."""


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


class LayerRecord(_Record):
    name: str
    type: str
    input_shape: list[int]
    output_shape: list[int]
    params: int
    trainable_params: int
    macs: int
    activations: int


class SummaryRecord(_Record):
    """The JSON schema of ``models.summarize(...).to_dict()``."""

    model: str
    input_shape: list[int]
    layers: list[LayerRecord]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    total_macs: int
    param_bytes: int
    activation_bytes: int


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


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def umask() -> int:
    """This process's file-creation mask (reading it means setting it: put straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never half.

    The file gets the usual permissions (0666 less the umask), not mkstemp's private 0600: the
    images copy the repository as root and serve it as an unprivileged user.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


class Repository:
    """A folder of model folders. Reading needs nothing but this module."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def names(self) -> list[str]:
        """Models that have a card, sorted; folders without one are still being written."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if NAME_PATTERN.match(p.name) and (p / CARD_FILE).is_file())

    def model_dir(self, name: str) -> Path:
        if not NAME_PATTERN.match(name):
            raise RepositoryError(f"invalid model name {name!r}: use lowercase letters, digits, '_', '-', '.'")
        return self.root / name

    def card_path(self, name: str) -> Path:
        return self.model_dir(name) / CARD_FILE

    def load_card(self, name: str) -> ModelCard:
        path = self.card_path(name)
        try:
            card = ModelCard.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise RepositoryError(f"{name}: no model card at {path}") from None
        except ValidationError as exc:
            raise RepositoryError(f"{name}: invalid model card {path}: {exc.error_count()} error(s): {exc}") from None
        if card.name != name:
            raise RepositoryError(f"{name}: card names the model {card.name!r}, not its folder's name")
        return card

    def write_card(self, card: ModelCard) -> Path:
        path = self.card_path(card.name)
        write_json_atomic(path, card.model_dump(mode="json"))
        return path

    def variant_path(self, name: str, version: int, precision: str = "fp32") -> Path:
        return self.model_dir(name) / str(int(version)) / VARIANT_FILES[precision]

    def check(self, name: str, card: ModelCard | None = None) -> list[str]:
        """Problems with ``name`` on disk: missing versions or files, sizes and hashes that differ."""
        try:
            card = card or self.load_card(name)
        except RepositoryError as exc:
            return [str(exc)]
        problems = []
        for number, version in sorted(card.versions.items()):
            if number != version.version:
                problems.append(f"{name}: version key {number} holds version {version.version}")
            if not (self.model_dir(name) / str(number)).is_dir():
                problems.append(f"{name}: version {number} is in the card but its folder is missing")
                continue
            for precision, variant in version.variants.items():
                if not variant.published:
                    continue
                path = self.model_dir(name) / str(number) / variant.file
                if not path.is_file():
                    problems.append(f"{name}: version {number} {precision} file {variant.file} is missing")
                elif variant.bytes is not None and path.stat().st_size != variant.bytes:
                    problems.append(
                        f"{name}: {path.relative_to(self.root)} has {path.stat().st_size} bytes, the card says {variant.bytes}"
                    )
                elif variant.sha256 and sha256_file(path) != variant.sha256:
                    problems.append(f"{name}: {path.relative_to(self.root)} does not match its sha256 in the card")
        return problems
