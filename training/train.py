"""Training and fine-tuning: one loop for both, on CPU, CUDA (mixed precision) or torchrun.

``train(TrainConfig(model="resnet18"))`` trains a network of the zoo on a data spec (see
:mod:`export.data`) with its recipe (see :mod:`export.recipes`), early-stops on validation
top-1, and writes into the output directory:

``checkpoint.pt``  the best weights with their :class:`~export.weights.CheckpointMeta`
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
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

import models

from .data import (
    DataSplits,
    DigitsTask,
    Preprocessing,
    effective_batch_size,
    eval_loader,
    load_data,
    parse_data_spec,
    train_loader,
)
from .recipes import DEFAULT_SET, FINETUNE_OVERRIDES, Recipe, get_recipe
from .weights import (
    Checkpoint,
    CheckpointMeta,
    WeightsError,
    build_model,
    freeze_backbone,
    freeze_modes,
    load_torchvision_weights,
    param_groups,
    read_checkpoint,
    read_weights,
    replace_head,
    save_checkpoint,
    trainable_parameters,
)

__all__ = [
    "FINETUNE_MODES",
    "DistEnv",
    "FinetuneConfig",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "finetune",
    "train",
    "train_default_set",
]

log = logging.getLogger(__name__)

FINETUNE_MODES = ("feature-extract", "finetune", "scratch")
CHECKPOINT, LAST, METRICS = "checkpoint.pt", "last.pt", "metrics.json"
LAST_POLICIES = ("keep", "delete", "none")


@dataclass
class TrainConfig:
    """One training run. Fields left ``None`` take the network's recipe (or an automatic choice).

    ``limit_train`` keeps that many training images (quick runs, tests); ``stop_after`` ends the
    run after that epoch as if interrupted (``last.pt`` stays, ``--resume`` continues it).
    ``last`` is what happens to ``last.pt``: written after every epoch and kept (``"keep"``) or
    deleted at the end (``"delete"``), or never written (``"none"``: no ``--resume``, but no
    1.6 GB write per epoch of VGG with Adam either; the build retrains an interrupted network).
    """

    model: str
    data: str = "digits"
    out: Path | None = None
    epochs: int | None = None
    image_size: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    patience: int | None = None
    seed: int = 0
    resume: bool = False
    quiet: bool = False
    progress: bool | None = None
    limit_train: int | None = None
    device: str | None = None
    workers: int | None = None
    threads: int | None = None
    last: str = "keep"
    stop_after: int | None = None
    recipe: Recipe | None = None

    def __post_init__(self) -> None:
        if self.last not in LAST_POLICIES:
            raise ValueError(f"last must be one of {', '.join(LAST_POLICIES)}, got {self.last!r}")

    def resolve_recipe(self, base: Recipe | None = None) -> Recipe:
        recipe = self.recipe or base or get_recipe(self.model)
        return recipe.override(
            epochs=self.epochs,
            image_size=self.image_size,
            batch_size=self.batch_size,
            lr=self.lr,
            patience=self.patience,
        )

    def out_dir(self) -> Path:
        return Path(self.out) if self.out is not None else Path("runs") / self.model


@dataclass
class FinetuneConfig(TrainConfig):
    """Transfer learning: ``source`` is our checkpoint or a torchvision ``.pth`` (optional for scratch)."""

    source: Path | None = None
    mode: str = "finetune"

    def out_dir(self) -> Path:
        return Path(self.out) if self.out is not None else Path("runs") / f"{self.model}-{self.mode}"


@dataclass
class TrainResult:
    model: str
    out: Path
    checkpoint: Path
    metrics: dict[str, Any]


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands in a ``torchrun`` launch (a single process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DistEnv:
        world = int(environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        local_world = int(environ.get("LOCAL_WORLD_SIZE", str(world)))
        return cls(int(environ["RANK"]), world, int(environ.get("LOCAL_RANK", "0")), local_world)


# ------------------------------------------------------------------------------------ plumbing


def _device(requested: str | None, env: DistEnv) -> torch.device:
    if requested is not None:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda asked for, but CUDA is not available; use --device cpu")
    else:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", env.local_rank if env.distributed else torch.cuda.current_device())
    return device


@contextlib.contextmanager
def _process_group(env: DistEnv, device: torch.device):
    if not env.distributed or dist.is_initialized():
        yield
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _set_threads(requested: int | None, env: DistEnv) -> int:
    threads = requested or max(1, (os.cpu_count() or 1) // env.local_world_size)
    torch.set_num_threads(threads)
    return threads


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _show_progress(config: TrainConfig, env: DistEnv) -> bool:
    if not env.main or config.quiet:
        return False
    if config.progress is not None:
        return config.progress
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("1", "true", "yes")


def _all_reduce(values: Sequence[float], env: DistEnv, device: torch.device) -> list[float]:
    if not env.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def _autocast(device: torch.device) -> tuple[Callable[[], contextlib.AbstractContextManager], str | None, bool]:
    """Mixed precision on CUDA: bfloat16 where supported (no scaler needed), else float16."""
    if device.type != "cuda":
        return contextlib.nullcontext, None, False
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return (lambda: torch.autocast("cuda", dtype=dtype)), str(dtype).replace("torch.", ""), dtype == torch.float16


def _lr_lambda(recipe: Recipe, steps_per_epoch: int) -> Callable[[int], float]:
    total = max(1, recipe.epochs * steps_per_epoch)
    warm = round(recipe.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, total - warm))
        if recipe.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        if recipe.schedule == "linear":
            return 1.0 - progress
        if recipe.schedule == "step":
            return 0.1 ** sum(progress >= m for m in (0.5, 0.75))
        return 1.0

    return factor


def _optimizer(groups: list[dict[str, Any]], recipe: Recipe) -> torch.optim.Optimizer:
    # Fused kernels (CPU and CUDA): on the FC-heavy networks (AlexNet, VGG: 60-140M parameters)
    # the foreach update was 40% of a CPU training step; fused is 5-6x faster there.
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.momentum > 0, fused=True)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr, fused=True)
    return torch.optim.Adam(groups, lr=recipe.lr, fused=True)


def _loss(output: Any, target: Tensor, criterion: nn.Module, aux_weight: float) -> tuple[Tensor, Tensor]:
    """Loss and main logits; a tuple output is (logits, *auxiliary logits) as GoogLeNet's."""
    if isinstance(output, tuple):
        logits, *aux = output
        loss = criterion(logits, target)
        for a in aux:
            if a is not None:
                loss = loss + aux_weight * criterion(a, target)
        return loss, logits
    return criterion(output, target), output


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Any,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    env: DistEnv = DistEnv(),
    channels_last: bool = False,
    workers: int = 0,
) -> dict[str, float]:
    """Top-1/top-5 accuracy (percent) and mean cross-entropy of ``model`` on ``dataset``."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    autocast, _, _ = _autocast(device)
    sums = [0.0, 0.0, 0.0, 0.0]  # loss, top-1 hits, top-5 hits, count
    for x, y in eval_loader(dataset, batch_size, rank=env.rank, world_size=env.world_size, workers=workers):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            logits = model(x)
        logits = logits.float()
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hits = top.eq(y[:, None])
        sums[0] += F.cross_entropy(logits, y, reduction="sum").item()
        sums[1] += hits[:, 0].sum().item()
        sums[2] += hits.any(dim=1).sum().item()
        sums[3] += y.numel()
    loss, top1, top5, n = _all_reduce(sums, env, device)
    model.train(was_training)
    n = max(n, 1)
    return {"loss": loss / n, "top1": 100.0 * top1 / n, "top5": 100.0 * top5 / n}


# ---------------------------------------------------------------------------------------- loop


@dataclass
class _Run:
    """Everything one fit needs, prepared by :func:`train` or :func:`finetune`."""

    config: TrainConfig
    recipe: Recipe
    data: DataSplits
    model: nn.Module
    model_options: dict[str, Any]
    groups: list[dict[str, Any]]
    env: DistEnv
    device: torch.device
    threads: int
    frozen: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _fit(run: _Run) -> TrainResult:
    config, recipe, data, env, device = run.config, run.recipe, run.data, run.env, run.device
    out = config.out_dir()
    net = run.model.to(device)
    if recipe.channels_last:
        net = net.to(memory_format=torch.channels_last)
    model: nn.Module = net
    if env.distributed:
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(net, device_ids=ids)
    optimizer = _optimizer(run.groups, recipe)
    n_train = len(data.train)  # type: ignore[arg-type]
    batch = effective_batch_size(recipe.batch_size, n_train, env.world_size)
    if batch != recipe.batch_size:
        log.info("batch size %d (the whole training set of %d images)", batch, n_train)
    steps = n_train // batch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(recipe, steps))
    autocast, amp_dtype, use_scaler = _autocast(device)
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    aux_weight = float(getattr(net, "aux_weight", 0.3))
    workers = config.workers if config.workers is not None else min(4, max(0, run.threads - 1))

    meta = CheckpointMeta(
        model=config.model,
        model_options=dict(run.model_options),
        preprocessing=data.preprocessing,
        labels=list(data.labels),
        recipe=recipe,
        dataset=data.name,
    )
    history: list[dict[str, Any]] = []
    start_epoch, seconds_before, bad_epochs = 0, 0.0, 0
    best: dict[str, Any] = {"top1": -1.0, "loss": math.inf, "epoch": -1}
    best_state: dict[str, Tensor] | None = None

    last_path = out / LAST
    if config.resume:
        if last_path.is_file():
            ckpt = read_checkpoint(last_path)
            if ckpt.training is None or ckpt.meta.model != config.model or ckpt.meta.dataset != data.name:
                raise WeightsError(
                    f"{last_path} is from {ckpt.meta.model} on {ckpt.meta.dataset}, not {config.model} on {data.name}; "
                    "use another --out or drop --resume"
                )
            state = ckpt.training
            net.load_state_dict(ckpt.state_dict)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            history, best, bad_epochs = list(state["history"]), dict(state["best"]), int(state["bad_epochs"])
            seconds_before = float(state["seconds"])
            start_epoch = int(state["epoch"]) + 1
            best_state = state.get("best_state")
            if best_state is None:  # the best weights were the saved ones
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            log.info("resuming %s from %s after epoch %d", config.model, last_path, start_epoch)
        else:
            log.warning("--resume: no %s yet; starting from the beginning", last_path)

    show = _show_progress(config, env)
    started = time.perf_counter()
    # A resumed run that had already run out of patience has nothing left to do.
    stopped_early = recipe.patience is not None and bad_epochs >= recipe.patience
    for epoch in range(start_epoch, recipe.epochs if not stopped_early else start_epoch):
        t0 = time.perf_counter()
        _seed_everything(config.seed * 1000 + epoch)
        model.train()
        if run.frozen:
            freeze_modes(net)
        sums = [0.0, 0.0, 0.0]  # loss * n, hits, n
        loader = train_loader(
            data.train, batch, seed=config.seed, epoch=epoch, rank=env.rank, world_size=env.world_size, workers=workers
        )
        bar = tqdm(
            total=steps,
            desc=f"{config.model} {epoch + 1}/{recipe.epochs}",
            file=sys.stderr,
            disable=not show,
            leave=False,
            dynamic_ncols=True,
            unit="batch",
        )
        for step, (x, y) in enumerate(loader):
            if step >= steps:
                break
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if data.augment is not None:
                gen = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch * 10_007 + step)
                x = data.augment(x, gen, (env.rank, env.world_size))
            if recipe.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast():
                loss, logits = _loss(model(x), y, criterion, aux_weight)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if recipe.grad_clip is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(net.parameters(), recipe.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            n = y.numel()
            sums[0] += loss.item() * n
            sums[1] += (logits.argmax(1) == y).sum().item()
            sums[2] += n
            bar.update()
            bar.set_postfix(loss=f"{sums[0] / sums[2]:.4f}", acc=f"{100 * sums[1] / sums[2]:.1f}%", refresh=False)
        bar.close()
        if not math.isfinite(sums[0]):
            raise FloatingPointError(
                f"{config.model}: the loss became {sums[0]} in epoch {epoch + 1}; lower the learning rate (--lr)"
            )
        loss_sum, hits, count = _all_reduce(sums, env, device)
        val = evaluate(
            net, data.val, batch_size=256, device=device, env=env, channels_last=recipe.channels_last, workers=workers
        )
        row = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / count,
            "train_top1": 100.0 * hits / count,
            "val_loss": val["loss"],
            "val_top1": val["top1"],
            "val_top5": val["top5"],
            "lr": max(g["lr"] for g in optimizer.param_groups),
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        improved = (val["top1"], -val["loss"]) > (best["top1"], -best["loss"])
        if improved:
            best = {"top1": val["top1"], "loss": val["loss"], "epoch": epoch}
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
            bad_epochs = 0
        else:
            bad_epochs += 1
        log.info(
            "%s epoch %d/%d: train loss %.4f top-1 %.2f%% | val loss %.4f top-1 %.2f%%%s | %.1fs",
            config.model,
            epoch + 1,
            recipe.epochs,
            row["train_loss"],
            row["train_top1"],
            row["val_loss"],
            row["val_top1"],
            " *" if improved else "",
            row["seconds"],
        )
        if env.main and config.last != "none":
            training = {
                "epoch": epoch,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if use_scaler else None,
                "history": history,
                "best": best,
                "bad_epochs": bad_epochs,
                "seconds": seconds_before + time.perf_counter() - started,
                # The best weights, unless they are the ones being saved anyway.
                "best_state": None if best["epoch"] == epoch else best_state,
            }
            save_checkpoint(last_path, net, dataclasses.replace(meta, epoch=epoch + 1), training)
        if config.stop_after is not None and epoch + 1 >= config.stop_after and epoch + 1 < recipe.epochs:
            log.info("stopping after epoch %d as asked; --resume continues", epoch + 1)
            _barrier(env)
            return TrainResult(config.model, out, last_path, {"stopped_after": epoch + 1})
        if recipe.patience is not None and bad_epochs >= recipe.patience:
            log.info("%s: no better validation top-1 for %d epochs; stopping early", config.model, bad_epochs)
            stopped_early = True
            break
    seconds = seconds_before + time.perf_counter() - started

    if best_state is not None:
        net.load_state_dict(best_state)
    test = evaluate(
        net, data.test, batch_size=256, device=device, env=env, channels_last=recipe.channels_last, workers=workers
    )
    options = dict(run.model_options)
    if callable(getattr(net, "drop_aux", None)):
        net.drop_aux()  # the auxiliary classifiers only serve training
        options["aux_logits"] = False
    net = net.to(memory_format=torch.contiguous_format)
    epochs_run = len(history)
    metrics = {
        "model": config.model,
        **data.describe(),
        "image_size": data.preprocessing.image_size,
        "in_channels": data.preprocessing.channels,
        "test_top1": test["top1"],
        "test_top5": test["top5"],
        "test_loss": test["loss"],
        "val_top1": best["top1"],
        "best_epoch": best["epoch"] + 1,
        "epochs": epochs_run,
        "epochs_planned": recipe.epochs,
        "stopped_early": stopped_early,
        "seconds": round(seconds, 3),
        "params": sum(p.numel() for p in net.parameters()),
        "trainable_params": trainable_parameters(net),
        **run.extra,
        "recipe": recipe.to_dict(),
        "batch_size": batch,
        "seed": config.seed,
        "device": str(device),
        "amp": amp_dtype,
        "world_size": env.world_size,
        "threads": run.threads,
        "torch": str(torch.__version__),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s)",
        "history": history,
    }
    ckpt_path = out / CHECKPOINT
    if env.main:
        final = dataclasses.replace(
            meta, model_options=options, metrics=_without(metrics, "history"), epoch=best["epoch"] + 1
        )
        save_checkpoint(ckpt_path, net, final)
        (out / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
        if config.last != "keep":
            last_path.unlink(missing_ok=True)
        log.info("%s: wrote %s and %s", config.model, ckpt_path, out / METRICS)
    _barrier(env)
    return TrainResult(config.model, out, ckpt_path, metrics)


def _barrier(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.barrier()


def _without(d: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


def _prepare(config: TrainConfig, recipe: Recipe) -> tuple[DistEnv, torch.device, int]:
    env = DistEnv.from_env()
    device = _device(config.device, env)
    threads = _set_threads(config.threads or recipe.threads, env)
    return env, device, threads


def _check_size(name: str, channels: int, size: int) -> None:
    info = models.get_model_info(name)
    probe = dataclasses.replace(info, input_size=(channels, *info.input_size[1:]))
    try:
        models.check_input_size(probe, (channels, size, size))
    except models.InputSizeError as err:
        need = info.input_size[1] if info.fixed_input_size else info.min_input_size
        raise models.InputSizeError(f"{err}; train it with --image-size {need}") from None


# ------------------------------------------------------------------------------------- commands


def train(config: TrainConfig) -> TrainResult:
    """Train ``config.model`` from scratch on ``config.data``; see the module docstring."""
    recipe = config.resolve_recipe()
    env, device, threads = _prepare(config, recipe)
    info = models.get_model_info(config.model)
    channels = info.input_size[0]
    _check_size(config.model, channels, recipe.image_size)
    with _process_group(env, device):
        data = load_data(
            config.data,
            image_size=recipe.image_size,
            in_channels=channels,
            limit_train=config.limit_train,
            augment=recipe.augment,
        )
        options = {**recipe.options, "num_classes": data.num_classes, "in_channels": channels}
        _seed_everything(config.seed)
        model = build_model(config.model, options)
        groups = param_groups(model, recipe.lr, recipe.weight_decay)
        run = _Run(config, recipe, data, model, options, groups, env, device, threads, extra={"mode": "train"})
        return _fit(run)


def finetune(config: FinetuneConfig) -> TrainResult:
    """Adapt a pretrained network to ``config.data``; see the module docstring for the modes."""
    if config.mode not in FINETUNE_MODES:
        raise ValueError(f"mode must be one of {', '.join(FINETUNE_MODES)}, got {config.mode!r}")
    if config.source is None and config.mode != "scratch":
        raise ValueError(f"--mode {config.mode} needs --from CHECKPOINT (our .pt or a torchvision .pth)")
    base = get_recipe(config.model).override(**FINETUNE_OVERRIDES)
    recipe = config.resolve_recipe(base)
    env, device, threads = _prepare(config, recipe)
    info = models.get_model_info(config.model)
    channels = info.input_size[0]

    source_options: dict[str, Any] = {k: v for k, v in recipe.options.items() if k != "aux_logits"}
    state: dict[str, Tensor] | None = None
    preprocessing: Preprocessing | None = None
    source_kind = "none"
    if config.source is not None:
        state, source_options, preprocessing, source_kind = _read_source(config, recipe, channels, source_options)
    if preprocessing is not None:
        channels = preprocessing.channels
        if config.image_size is None:
            recipe = recipe.override(image_size=preprocessing.image_size)
        preprocessing = dataclasses.replace(preprocessing, image_size=recipe.image_size)
        if isinstance(parse_data_spec(config.data), DigitsTask):
            preprocessing = dataclasses.replace(preprocessing, resize="stretch", crop_pct=1.0)
        elif preprocessing.resize == "stretch":
            preprocessing = dataclasses.replace(preprocessing, resize="center_crop", crop_pct=0.875)
    _check_size(config.model, channels, recipe.image_size)

    with _process_group(env, device):
        data = load_data(
            config.data,
            image_size=recipe.image_size,
            in_channels=channels,
            preprocessing=preprocessing,
            limit_train=config.limit_train,
            augment=recipe.augment,
        )
        _seed_everything(config.seed)
        if config.mode == "scratch":
            options = {**source_options, **recipe.options, "num_classes": data.num_classes, "in_channels": channels}
            model = build_model(config.model, options)
        else:
            model = build_model(config.model, source_options)
            assert state is not None
            load_torchvision_weights(model, state)
            replace_head(model, data.num_classes)
            options = {**source_options, "num_classes": data.num_classes}
            if "aux_logits" in options:
                options["aux_logits"] = False
        frozen = config.mode == "feature-extract"
        if frozen:
            freeze_backbone(model)
        scale = 1.0 if config.mode == "scratch" else recipe.backbone_lr_scale
        groups = param_groups(model, recipe.lr, recipe.weight_decay, backbone_lr_scale=scale)
        extra = {
            "mode": config.mode,
            "source": str(config.source) if config.source is not None else None,
            "source_kind": source_kind,
        }
        run = _Run(config, recipe, data, model, options, groups, env, device, threads, frozen=frozen, extra=extra)
        return _fit(run)


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
            name: (None if r is None else _without(r.metrics, "history", "recipe")) for name, r in results.items()
        }
        out_root.mkdir(parents=True, exist_ok=True)
        (out_root / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return results
