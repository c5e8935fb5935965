"""Training and fine-tuning: one loop for both, on CPU, CUDA (mixed precision) or torchrun.

``train(TrainConfig(model="resnet18"))`` trains a network of the zoo on a data spec (see
:mod:`training.data`) with its recipe (see :mod:`training.recipes`), early-stops on validation
top-1, and writes into the output directory:

``checkpoint.pt``  the best weights with their :class:`~training.weights.CheckpointMeta`
``metrics.json``   test top-1/top-5, per-epoch history, time, data and recipe
``last.pt``        the latest state for ``--resume`` (weights, optimizer, schedule, history)

Launched by ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set), the same call trains
with DistributedDataParallel (gloo on CPU, nccl on GPUs): the global batch is split over the
processes and the gradients averaged, so the updates are those of a single process up to
floating-point noise (BatchNorm statistics excepted: each process normalises its own share).
Only rank 0 writes files and shows progress.

``finetune(FinetuneConfig(...))`` starts from one of our checkpoints or a torchvision
``.pth`` state_dict, replaces the head for the target classes and trains in one of three
modes: ``feature-extract`` (only the new head learns), ``finetune`` (everything, the backbone
at ``recipe.backbone_lr_scale`` times the rate) or ``scratch`` (the baseline, no weights).

This module prepares the network, data and device of a run; the loop itself is
:mod:`training.loop`, the torchrun and device plumbing :mod:`training.distributed`, and the
configuration records :mod:`training.config` (importable from here as well).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import models

from .config import FINETUNE_MODES, FinetuneConfig, TrainConfig, TrainResult
from .data import DataSplits, DigitsTask, Preprocessing, load_data, parse_data_spec
from .distributed import DistEnv, choose_device, process_group, set_threads
from .loop import Run, fit, seed_everything
from .recipes import DEFAULT_SET, FINETUNE_OVERRIDES, Recipe, get_recipe
from .weights import (
    Checkpoint,
    WeightsError,
    build_model,
    freeze_backbone,
    load_torchvision_weights,
    param_groups,
    read_weights,
    replace_head,
)

__all__ = [
    "FINETUNE_MODES",
    "DistEnv",
    "FinetuneConfig",
    "TrainConfig",
    "TrainResult",
    "finetune",
    "train",
    "train_default_set",
]

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------- commands


def train(config: TrainConfig) -> TrainResult:
    """Train ``config.model`` from scratch on ``config.data``; see the module docstring."""
    recipe = config.resolve_recipe()
    env, device, threads = _prepare(config, recipe)
    info = models.get_model_info(config.model)
    channels = info.input_size[0]
    _check_size(config.model, channels, recipe.image_size)
    with process_group(env, device):
        data = load_data(
            config.data,
            image_size=recipe.image_size,
            in_channels=channels,
            limit_train=config.limit_train,
            augment=recipe.augment,
        )
        options = {**recipe.options, "num_classes": data.num_classes, "in_channels": channels}
        seed_everything(config.seed)
        model = build_model(config.model, options)
        groups = param_groups(model, recipe.lr, recipe.weight_decay)
        return fit(Run(config, recipe, data, model, options, groups, env, device, threads, extra={"mode": "train"}))


def finetune(config: FinetuneConfig) -> TrainResult:
    """Adapt a pretrained network to ``config.data``; see the module docstring for the modes."""
    if config.mode not in FINETUNE_MODES:
        raise ValueError(f"mode must be one of {', '.join(FINETUNE_MODES)}, got {config.mode!r}")
    if config.source is None and config.mode != "scratch":
        raise ValueError(f"--mode {config.mode} needs --from CHECKPOINT (our .pt or a torchvision .pth)")
    recipe = config.resolve_recipe(get_recipe(config.model).override(**FINETUNE_OVERRIDES))
    env, device, threads = _prepare(config, recipe)
    channels = models.get_model_info(config.model).input_size[0]
    source_options: dict[str, Any] = {k: v for k, v in recipe.options.items() if k != "aux_logits"}
    weights: dict[str, Tensor] | None = None
    preprocessing: Preprocessing | None = None
    source_kind = "none"
    if config.source is not None:
        weights, source_options, preprocessing, source_kind = _read_source(config, recipe, channels, source_options)
    if preprocessing is not None:
        channels = preprocessing.channels
        recipe, preprocessing = _target_preprocessing(config, recipe, preprocessing)
    _check_size(config.model, channels, recipe.image_size)

    with process_group(env, device):
        data = load_data(
            config.data,
            image_size=recipe.image_size,
            in_channels=channels,
            preprocessing=preprocessing,
            limit_train=config.limit_train,
            augment=recipe.augment,
        )
        seed_everything(config.seed)
        model, options = _target_model(config, recipe, data, channels, source_options, weights)
        frozen = config.mode == "feature-extract"
        if frozen:
            freeze_backbone(model)
        scale = 1.0 if config.mode == "scratch" else recipe.backbone_lr_scale
        groups = param_groups(model, recipe.lr, recipe.weight_decay, backbone_lr_scale=scale)
        source = str(config.source) if config.source is not None else None
        extra = {"mode": config.mode, "source": source, "source_kind": source_kind}
        return fit(Run(config, recipe, data, model, options, groups, env, device, threads, frozen=frozen, extra=extra))


# -------------------------------------------------------------------------------------- helpers


def _prepare(config: TrainConfig, recipe: Recipe) -> tuple[DistEnv, torch.device, int]:
    env = DistEnv.from_env()
    device = choose_device(config.device, env)
    threads = set_threads(config.threads or recipe.threads, env)
    return env, device, threads


def _check_size(name: str, channels: int, size: int) -> None:
    info = models.get_model_info(name)
    probe = dataclasses.replace(info, input_size=(channels, *info.input_size[1:]))
    try:
        models.check_input_size(probe, (channels, size, size))
    except models.InputSizeError as err:
        need = info.input_size[1] if info.fixed_input_size else info.min_input_size
        raise models.InputSizeError(f"{err}; train it with --image-size {need}") from None


def _target_preprocessing(
    config: FinetuneConfig, recipe: Recipe, preprocessing: Preprocessing
) -> tuple[Recipe, Preprocessing]:
    """The recipe and preprocessing for the target data, from the source's preprocessing.

    The source's image size unless one is asked for; the digits are stretched whole, other images centre-cropped.
    """
    if config.image_size is None:
        recipe = recipe.override(image_size=preprocessing.image_size)
    preprocessing = dataclasses.replace(preprocessing, image_size=recipe.image_size)
    if isinstance(parse_data_spec(config.data), DigitsTask):
        preprocessing = dataclasses.replace(preprocessing, resize="stretch", crop_pct=1.0)
    elif preprocessing.resize == "stretch":
        preprocessing = dataclasses.replace(preprocessing, resize="center_crop", crop_pct=0.875)
    return recipe, preprocessing


def _target_model(
    config: FinetuneConfig,
    recipe: Recipe,
    data: DataSplits,
    channels: int,
    source_options: dict[str, Any],
    weights: dict[str, Tensor] | None,
) -> tuple[nn.Module, dict[str, Any]]:
    """The network to train and its builder options: the source's weights under a new head, or fresh (scratch)."""
    if config.mode == "scratch":
        options = {**source_options, **recipe.options, "num_classes": data.num_classes, "in_channels": channels}
        return build_model(config.model, options), options
    model = build_model(config.model, source_options)
    assert weights is not None
    load_torchvision_weights(model, weights)
    replace_head(model, data.num_classes)
    options = {**source_options, "num_classes": data.num_classes}
    if "aux_logits" in options:
        options["aux_logits"] = False
    return model, options


def _read_source(
    config: FinetuneConfig, recipe: Recipe, channels: int, options: dict[str, Any]
) -> tuple[dict[str, Tensor], dict[str, Any], Preprocessing | None, str]:
    """Weights, builder options and preprocessing of ``config.source``."""
    path = Path(config.source)  # type: ignore[arg-type]
    if not path.is_file():
        raise WeightsError(f"--from {path}: no such file; give a checkpoint.pt from 'train' or a torchvision .pth")
    source = read_weights(path)
    if isinstance(source, Checkpoint):
        ckpt = source
        if ckpt.meta.model != config.model:
            raise WeightsError(
                f"{path} holds {ckpt.meta.model} weights, not {config.model}; run 'finetune {ckpt.meta.model}' "
                "or give a checkpoint of this network"
            )
        return ckpt.state_dict, dict(ckpt.meta.model_options), ckpt.meta.preprocessing, "checkpoint"
    state = source
    info = models.get_model_info(config.model)
    head = state.get(f"{info.classifier}.weight")
    options = {**options, "num_classes": int(head.shape[0]) if head is not None else info.num_classes}
    if any(k.startswith(("aux1.", "aux2.")) for k in state):
        options["aux_logits"] = True  # torchvision's GoogLeNet files keep the auxiliary heads
    # torchvision's weights expect its ImageNet statistics.
    pre = Preprocessing(recipe.image_size, "RGB" if len(info.mean) == 3 else "L", info.mean, info.std)
    return state, options, pre.with_channels(channels), "torchvision"


def train_default_set(
    out_root: str | os.PathLike = "runs",
    names: Iterable[str] = DEFAULT_SET,
    *,
    data: str = "digits",
    seed: int = 0,
    quiet: bool = False,
    last: str = "none",
    **overrides: Any,
) -> dict[str, TrainResult | None]:
    """Train each network of ``names`` in turn into ``out_root/<name>``; the build step calls this.

    A network that is not registered (yet) is reported and skipped (``None`` in the result).
    ``overrides`` are :class:`TrainConfig` fields (``epochs``, ``limit_train``, ...).
    """
    out_root = Path(out_root)
    known = set(models.list_models())
    results: dict[str, TrainResult | None] = {}
    for name in names:
        if name not in known:
            log.warning("%s is not registered (yet); skipping it", name)
            results[name] = None
            continue
        config = TrainConfig(model=name, data=data, out=out_root / name, seed=seed, quiet=quiet, last=last, **overrides)
        results[name] = train(config)
    if DistEnv.from_env().main:
        summary = {
            name: None if r is None else {k: v for k, v in r.metrics.items() if k not in ("history", "recipe")}
            for name, r in results.items()
        }
        out_root.mkdir(parents=True, exist_ok=True)
        (out_root / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return results
