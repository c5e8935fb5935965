"""The surface every classifier of the zoo offers, after timm's models.

``forward_features`` (the backbone), ``forward_head`` (pooling and classifier) and
``forward``; ``get_classifier``/``reset_classifier`` so that summaries, export and
fine-tuning need no per-network special cases.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from ._registry import ModelInfo, check_input_size

__all__ = ["Classifier"]


def _tracing() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.compiler.is_exporting()


class Classifier(nn.Module):
    """Base class: subclasses implement ``forward_features`` and ``forward_head``.

    ``info`` is attached by the registry; with it, ``forward`` rejects an input the network
    cannot take with an error naming the size it needs, instead of a shape error deep inside.
    """

    info: ModelInfo

    def forward_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        info = self.__dict__.get("info")
        if info is not None and not _tracing():
            check_input_size(info, x.shape)
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        if self.info.classifier is None:
            raise ValueError(f"{self.info.name} has no classification layer")
        return self.get_submodule(self.info.classifier)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final layer by a freshly initialised one with ``num_classes`` outputs."""
        old = self.get_classifier()
        if isinstance(old, nn.Linear):
            new: nn.Module = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
        elif isinstance(old, nn.Conv2d) and old.kernel_size == (1, 1):
            new = nn.Conv2d(old.in_channels, num_classes, 1, bias=old.bias is not None)
        else:
            raise TypeError(f"cannot reset a {type(old).__name__} classifier")
        new = new.to(device=old.weight.device, dtype=old.weight.dtype)
        parent_name, _, child = self.info.classifier.rpartition(".")  # type: ignore[union-attr]
        setattr(self.get_submodule(parent_name) if parent_name else self, child, new)
        self.info = replace(self.info, num_classes=num_classes)
