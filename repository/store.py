"""The model repository on disk: files, hashes and the reader both export and service use.

Layout, after Triton's model repository::

    <repository>/<name>/model.json              the model card (repository.card.ModelCard)
    <repository>/<name>/config.pbtxt            Triton onnxruntime-backend configuration
    <repository>/<name>/<version>/model.onnx    float32 (+ model.int8.onnx, model.fp16.onnx)
    <repository>/<name>/<version>/samples/      held-out sample images (PNG), listed in the card

Torch-free (pydantic and the standard library only). A card is written last and atomically,
so a reader that sees ``model.json`` sees a complete model; each variant's sha256 in the card
lets a reader detect a truncated or edited file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .card import SAMPLES_DIR, VARIANT_FILES, ModelCard, SampleImage, VersionCard

__all__ = [
    "CARD_FILE",
    "NAME_PATTERN",
    "TRITON_CONFIG_FILE",
    "Repository",
    "RepositoryError",
    "sha256_file",
    "umask",
    "write_json_atomic",
    "write_text_atomic",
]

CARD_FILE = "model.json"
TRITON_CONFIG_FILE = "config.pbtxt"
# Model names become folder names: keep them to a safe alphabet, never a path.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class RepositoryError(Exception):
    """The repository on disk does not match its cards (missing file, bad hash, invalid card)."""


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

    def sample_path(self, name: str, version: int, sample: SampleImage) -> Path:
        """Where a sample image of the card is (its file name is a checked name, never a path)."""
        return self.model_dir(name) / str(int(version)) / SAMPLES_DIR / sample.file

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
                        f"{name}: {path.relative_to(self.root)} has {path.stat().st_size} bytes, "
                        f"the card says {variant.bytes}"
                    )
                elif variant.sha256 and sha256_file(path) != variant.sha256:
                    problems.append(f"{name}: {path.relative_to(self.root)} does not match its sha256 in the card")
            problems += self._check_samples(name, number, version)
        return problems

    def _check_samples(self, name: str, number: int, version: VersionCard) -> list[str]:
        problems = []
        for sample in version.samples:
            path = self.sample_path(name, number, sample)
            if not path.is_file():
                problems.append(f"{name}: version {number} sample {sample.file} is missing")
            elif sha256_file(path) != sample.sha256:
                problems.append(f"{name}: {path.relative_to(self.root)} does not match its sha256 in the card")
        return problems
