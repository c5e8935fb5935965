"""Every way weights get in or out of a network, in one place: model files do no I/O.

* our checkpoints: :func:`save_checkpoint` / :func:`load_checkpoint`, a ``torch.save`` dict
  whose metadata is the typed :class:`CheckpointMeta` (model name and options, preprocessing,
  labels, recipe, metrics) next to the ``state_dict``;
* torchvision-format ``.pth`` state_dicts: :func:`load_torchvision_weights`, strict, with an
  error that lists the mismatches and names the architecture the file fits;
* adapting a pretrained network: :func:`replace_head`, :func:`freeze_backbone`,
  :func:`param_groups` (a lower learning rate for the backbone).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import models

from .data import Preprocessing
from .recipes import Recipe

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointMeta",
    "WeightsError",
    "build_model",
    "freeze_backbone",
    "freeze_modes",
    "is_checkpoint",
    "load_checkpoint",
    "load_state_file",
    "load_torchvision_weights",
    "param_groups",
    "read_checkpoint",
    "read_weights",
    "replace_head",
    "restore_trainable",
    "save_checkpoint",
    "trainable_parameters",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_FORMAT = "cnnserve-checkpoint"


class WeightsError(ValueError):
    """Weights that do not fit; the message says which keys and what to try instead."""


@dataclass
class CheckpointMeta:
    """What a checkpoint says about its weights; all the export step needs besides them.

    ``model`` and ``model_options`` rebuild the network (``create_model(model, **model_options)``;
    the options include ``num_classes`` and ``in_channels``); ``labels[i]`` names output ``i``.
    ``frozen`` names the parameters training left frozen (``requires_grad`` off: the backbone of
    ``finetune --mode feature-extract``); ``None`` in checkpoints written before it was recorded,
    for which :func:`restore_trainable` derives it from the recorded mode.
    """

    model: str
    model_options: dict[str, Any]
    preprocessing: Preprocessing
    labels: list[str]
    recipe: Recipe
    metrics: dict[str, Any] = field(default_factory=dict)
    epoch: int = 0
    dataset: str = ""
    frozen: list[str] | None = None
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        # "frozen" only when recorded: older readers ignore a key they do not know, so the format stays 1.
        recorded = {"frozen": list(self.frozen)} if self.frozen is not None else {}
        return {
            "format_version": self.format_version,
            "model": self.model,
            "model_options": dict(self.model_options),
            "preprocessing": self.preprocessing.to_dict(),
            "labels": list(self.labels),
            "recipe": self.recipe.to_dict(),
            "metrics": dict(self.metrics),
            "epoch": self.epoch,
            "dataset": self.dataset,
            **recorded,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckpointMeta:
        version = int(data.get("format_version", 0))
        if version > FORMAT_VERSION:
            raise WeightsError(
                f"checkpoint format {version} is newer than this code reads ({FORMAT_VERSION}); update cnnserve"
            )
        return cls(
            model=data["model"],
            model_options=dict(data["model_options"]),
            preprocessing=Preprocessing.from_dict(data["preprocessing"]),
            labels=list(data["labels"]),
            recipe=Recipe.from_dict(data["recipe"]),
            metrics=dict(data.get("metrics", {})),
            epoch=int(data.get("epoch", 0)),
            dataset=str(data.get("dataset", "")),
            frozen=list(data["frozen"]) if data.get("frozen") is not None else None,
            format_version=version,
        )


@dataclass
class Checkpoint:
    """A loaded checkpoint: the metadata, the weights, and (in ``last.pt``) the training state."""

    meta: CheckpointMeta
    state_dict: dict[str, Tensor]
    training: dict[str, Any] | None = None


def build_model(name: str, options: Mapping[str, Any]) -> nn.Module:
    """``models.create_model(name, **options)``: the one place the training side builds networks."""
    return models.create_model(name, **dict(options))


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    meta: CheckpointMeta,
    training: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights with ``meta`` (and, for resuming, ``training`` state) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "format": _FORMAT,
        "format_version": FORMAT_VERSION,
        # Plain JSON types only, so that weights_only loading reads it (no str subclasses, numpy scalars).
        "meta": json.loads(json.dumps(meta.to_dict(), default=_plain)),
        "state_dict": {k: v.detach().cpu() for k, v in _unwrap(model).state_dict().items()},
    }
    if training is not None:
        payload["training"] = dict(training)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy and torch scalars
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot store {type(value).__name__} in checkpoint metadata")


def is_checkpoint(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("format") == _FORMAT


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """The contents of one of our checkpoints, without building the network."""
    payload = _load(path)
    if not is_checkpoint(payload):
        raise WeightsError(
            f"{path} is not a cnnserve checkpoint (no 'format: {_FORMAT}' entry); "
            "for a torchvision .pth state_dict, use load_torchvision_weights or finetune --from"
        )
    return Checkpoint(CheckpointMeta.from_dict(payload["meta"]), payload["state_dict"], payload.get("training"))


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, Checkpoint]:
    """Rebuild the network a checkpoint was saved from, with its weights, in eval mode."""
    ckpt = read_checkpoint(path)
    model = build_model(ckpt.meta.model, ckpt.meta.model_options)
    _load_strict(model, ckpt.state_dict, source=str(path))
    return model.to(device).eval(), ckpt


def _load(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises pickle, zip and runtime errors for bad files
        raise WeightsError(f"cannot read {path} as PyTorch weights ({type(err).__name__}: {err})") from err


def read_weights(path: str | os.PathLike) -> Checkpoint | dict[str, Tensor]:
    """One of our checkpoints (as a :class:`Checkpoint`) or the bare state_dict of any other ``.pth``."""
    payload = _load(path)
    if is_checkpoint(payload):
        return Checkpoint(CheckpointMeta.from_dict(payload["meta"]), payload["state_dict"], payload.get("training"))
    return _state_dict(payload, path)


def load_state_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """A bare state_dict from a ``.pth`` file (also unwrapping ``{"state_dict": ...}`` and ``module.``)."""
    source = read_weights(path)
    return source.state_dict if isinstance(source, Checkpoint) else source


def _state_dict(payload: Any, path: str | os.PathLike) -> dict[str, Tensor]:
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(payload, dict) and isinstance(payload.get(key), dict):
            payload = payload[key]
            break
    if not isinstance(payload, dict) or not all(isinstance(v, Tensor) for v in payload.values()):
        raise WeightsError(f"{path} does not hold a state_dict (a mapping of names to tensors)")
    if payload and all(k.startswith("module.") for k in payload):
        payload = {k[len("module.") :]: v for k, v in payload.items()}  # saved from DataParallel/DDP
    return payload


def load_torchvision_weights(model: nn.Module, source: str | os.PathLike | Mapping[str, Tensor]) -> nn.Module:
    """Load a torchvision-format state_dict into ``model``, strictly (every key, every shape).

    ``source`` is a ``.pth`` path or a state_dict. A mismatch raises :class:`WeightsError`
    listing the missing, unexpected and mis-shaped keys and naming the registered
    architecture(s) the file does fit.
    """
    state = dict(source) if isinstance(source, Mapping) else load_state_file(source)
    _load_strict(model, state, source=str(source) if not isinstance(source, Mapping) else "the state_dict")
    return model


def _load_strict(model: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    target = _unwrap(model).state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    mis_shaped = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(target[k].shape)}"
        for k in target
        if k in state and tuple(state[k].shape) != tuple(target[k].shape)
    ]
    if missing or unexpected or mis_shaped:
        info = getattr(_unwrap(model), "info", None)
        name = info.name if info is not None else type(model).__name__
        lines = [f"{source} does not fit {name}:"]
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mis_shaped),
        ):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
                lines.append(f"  {label}: {shown}")
        lines.append("  " + _suggest(state, name, head_only=_head_only(model, missing, unexpected, mis_shaped)))
        raise WeightsError("\n".join(lines))
    _unwrap(model).load_state_dict(state, strict=True)


def _head_only(model: nn.Module, missing: list[str], unexpected: list[str], mis_shaped: list[str]) -> bool:
    try:
        head = _classifier_path(model)
    except (AttributeError, ValueError):
        return False
    return not missing and not unexpected and all(m.startswith(head + ".") for m in mis_shaped)


def _suggest(state: Mapping[str, Tensor], name: str, head_only: bool) -> str:
    if head_only:
        return (
            "only the classifier differs: build the model with the file's class count and replace the head "
            "(finetune --from does this)"
        )
    fits = _matching_architectures(state)
    if fits:
        return f"was this file saved from a different architecture? It fits: {', '.join(fits)}"
    return "was this file saved from a different architecture? No registered network matches it"


def _matching_architectures(state: Mapping[str, Tensor]) -> list[str]:
    """Registered networks whose state_dict has exactly these keys (any head size)."""
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    fits = []
    for name in models.list_models():
        try:
            with torch.device("meta"):
                candidate = models.create_model(name)
        except Exception:  # a builder that cannot run on the meta device is simply not suggested
            continue
        theirs = {k: tuple(v.shape) for k, v in candidate.state_dict().items()}
        if theirs.keys() != shapes.keys():
            continue
        head = candidate.info.classifier or ""
        if all(theirs[k] == shapes[k] for k in theirs if not k.startswith(head + ".")):
            fits.append(name)
    return fits


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _classifier_path(model: nn.Module) -> str:
    path = _unwrap(model).info.classifier
    if path is None:
        raise ValueError(f"{_unwrap(model).info.name} has no classification layer")
    return path


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """A freshly initialised classifier with ``num_classes`` outputs (auxiliary heads dropped)."""
    net = _unwrap(model)
    drop_aux = getattr(net, "drop_aux", None)
    if callable(drop_aux):
        drop_aux()  # GoogLeNet's auxiliary classifiers only help training from scratch
    net.reset_classifier(num_classes)
    return model


def freeze_backbone(model: nn.Module) -> list[str]:
    """Freeze every parameter except the classifier's; returns the names still trainable."""
    net = _unwrap(model)
    head = net.get_classifier()
    for p in net.parameters():
        p.requires_grad_(False)
    for p in head.parameters():
        p.requires_grad_(True)
    return [n for n, p in net.named_parameters() if p.requires_grad]


def restore_trainable(model: nn.Module, meta: CheckpointMeta) -> nn.Module:
    """Set ``requires_grad`` on ``model`` as training left it, so its summary says what was trained.

    The checkpoint's ``frozen`` names when recorded; for checkpoints written before, the mode in its
    metrics decides: ``feature-extract`` trained the classifier alone, everything else (``train``,
    ``finetune``, ``scratch``) every parameter.
    """
    net = _unwrap(model)
    if meta.frozen is not None:
        frozen = set(meta.frozen)
        for name, p in net.named_parameters():
            p.requires_grad_(name not in frozen)
    elif meta.metrics.get("mode") == "feature-extract":
        freeze_backbone(net)
    else:
        net.requires_grad_(True)
    return model


def freeze_modes(model: nn.Module) -> None:
    """Put modules whose parameters are all frozen in eval mode (call after ``model.train()``).

    A frozen BatchNorm must not update its running statistics either, or the "frozen"
    features drift; dropout in a frozen backbone is off, as in a feature extractor.
    """
    for module in _unwrap(model).modules():
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            module.eval()


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def param_groups(
    model: nn.Module, lr: float, weight_decay: float, backbone_lr_scale: float = 1.0
) -> list[dict[str, Any]]:
    """Optimizer groups: backbone at ``lr * backbone_lr_scale``, classifier at ``lr``.

    Biases and normalisation weights (1-d tensors) get no weight decay. Frozen parameters
    are left out.
    """
    net = _unwrap(model)
    head_ids = {id(p) for p in net.get_classifier().parameters()}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for p in net.parameters():
        if p.requires_grad:
            groups.setdefault((id(p) in head_ids, p.ndim > 1), []).append(p)
    out = []
    for (is_head, decays), params in sorted(groups.items()):
        out.append(
            {
                "params": params,
                "lr": lr if is_head else lr * backbone_lr_scale,
                "weight_decay": weight_decay if decays else 0.0,
                "name": ("head" if is_head else "backbone") + ("" if decays else "_no_decay"),
            }
        )
    if not out:
        raise ValueError("the model has no trainable parameters")
    return out
