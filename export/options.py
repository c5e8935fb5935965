"""What a build does: :class:`BuildOptions`, shared by the command and every step of the pipeline."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repository import Batching

from .onnx_export import EXPORT_REVISION, ExportOptions
from .quantize import QuantizeOptions

__all__ = ["BUILD_FORMAT", "BuildOptions", "replace_options"]

# Bump when the pipeline changes what it writes: every model is then rebuilt once (so does
# export.onnx_export.EXPORT_REVISION, for the graph alone).
# 2: the card's summary reports training's trainable/frozen split (format 1 said every parameter
#    was frozen, the serving copy's state); the next build publishes a new version with it.
# 2 also: sample images in each version.
# 2 also: the ONNX tensor of each layer's output (the views of what the network sees).
BUILD_FORMAT = 2


@dataclass(frozen=True)
class BuildOptions:
    """What ``python -m export build`` does. ``models=None`` is the default set (``training.recipes.DEFAULT_SET``)."""

    models: Sequence[str] | None = None
    repository: Path = Path("model_repository")
    checkpoints: Path = Path("runs")
    quick: bool = False
    data: str = "digits"
    seed: int = 0
    force: bool = False
    progress: bool = True
    threads: int | None = None
    export: ExportOptions = ExportOptions()
    quantize: QuantizeOptions = QuantizeOptions()
    batching: Batching = Batching()

    def __post_init__(self) -> None:
        object.__setattr__(self, "repository", Path(self.repository))
        object.__setattr__(self, "checkpoints", Path(self.checkpoints))
        if self.models is not None:
            object.__setattr__(self, "models", tuple(self.models))

    def export_key(self) -> dict[str, Any]:
        """Everything besides the checkpoint that decides what a build publishes (stored in the card)."""
        return {
            "build_format": BUILD_FORMAT,
            "export_revision": EXPORT_REVISION,
            "export": self.export.to_dict(),
            "quantize": self.quantize.to_dict(),
            "batching": self.batching.model_dump(mode="json"),
            "quick": self.quick,
        }

    def checkpoint_dir(self, name: str) -> Path:
        # Quick checkpoints live apart, so a quick build never replaces (or reuses) a real one.
        return self.checkpoints / ("quick" if self.quick else "") / name


def replace_options(options: BuildOptions, **changes: Any) -> BuildOptions:
    """``options`` with the changes that are not ``None`` (CLI flags that were not given)."""
    return dataclasses.replace(options, **{k: v for k, v in changes.items() if v is not None})
