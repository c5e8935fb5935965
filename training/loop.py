"""The training loop that :func:`training.train.train` and :func:`training.train.finetune` share.

:func:`fit` takes a prepared :class:`Run` (network, data, recipe, device) and goes through a few
steps over a :class:`FitState`: set up, resume from ``last.pt`` if asked, then per epoch train,
validate, keep the best weights, write ``last.pt`` and stop early once validation top-1 stops
improving; at the end it tests the best weights and writes ``checkpoint.pt`` and ``metrics.json``.
Under ``torchrun`` every process runs the loop on its share of the data; only rank 0 writes files
and shows progress. :func:`evaluate_model` is the accuracy measure of the whole training side.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from .config import TrainConfig, TrainResult
from .data import DataSplits, effective_batch_size, eval_loader, train_loader
from .distributed import SINGLE_PROCESS, DistEnv, Precision, all_reduce, barrier
from .recipes import Recipe
from .weights import CheckpointMeta, WeightsError, freeze_modes, read_checkpoint, save_checkpoint, trainable_parameters

__all__ = ["CHECKPOINT", "LAST", "METRICS", "FitState", "Run", "evaluate_model", "fit", "seed_everything"]

log = logging.getLogger(__name__)

CHECKPOINT, LAST, METRICS = "checkpoint.pt", "last.pt", "metrics.json"


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (initialisation, dropout)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    dataset: Any,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    env: DistEnv = SINGLE_PROCESS,
    channels_last: bool = False,
    workers: int = 0,
) -> dict[str, float]:
    """Top-1/top-5 accuracy (percent) and mean cross-entropy of ``model`` on ``dataset``."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    precision = Precision.for_device(device)
    sums = [0.0, 0.0, 0.0, 0.0]  # loss, top-1 hits, top-5 hits, count
    for x, y in eval_loader(dataset, batch_size, rank=env.rank, world_size=env.world_size, workers=workers):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with precision.autocast():
            logits = model(x)
        logits = logits.float()
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hits = top.eq(y[:, None])
        sums[0] += F.cross_entropy(logits, y, reduction="sum").item()
        sums[1] += hits[:, 0].sum().item()
        sums[2] += hits.any(dim=1).sum().item()
        sums[3] += y.numel()
    loss, top1, top5, n = all_reduce(sums, env, device)
    model.train(was_training)
    n = max(n, 1)
    return {"loss": loss / n, "top1": 100.0 * top1 / n, "top5": 100.0 * top5 / n}


# ---------------------------------------------------------------------------------------- state


@dataclass
class Run:
    """What one fit trains, on what and where: prepared by ``train`` or ``finetune``, fixed for the fit."""

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

    @cached_property
    def batch(self) -> int:
        """The global batch size: the recipe's, or the whole training set where that is smaller."""
        return effective_batch_size(self.recipe.batch_size, self.data.sizes["train"], self.env.world_size)

    @property
    def steps(self) -> int:
        """Optimizer steps per epoch, of full batches only."""
        return self.data.sizes["train"] // self.batch

    @property
    def workers(self) -> int:
        """Loader processes: as asked, else one per thread left over, at most four."""
        return self.config.workers if self.config.workers is not None else min(4, max(0, self.threads - 1))

    @cached_property
    def precision(self) -> Precision:
        return Precision.for_device(self.device)

    @property
    def out(self) -> Path:
        return self.config.out_dir()

    def checkpoint_meta(self) -> CheckpointMeta:
        return CheckpointMeta(
            model=self.config.model,
            model_options=dict(self.model_options),
            preprocessing=self.data.preprocessing,
            labels=list(self.data.labels),
            recipe=self.recipe,
            dataset=self.data.name,
            # What the card's summary reports as trainable: only the head after feature extraction.
            frozen=[name for name, p in self.model.named_parameters() if not p.requires_grad],
        )


@dataclass
class FitState:
    """The run's moving parts and its progress so far, which ``last.pt`` keeps for ``--resume``."""

    net: nn.Module  # the network itself: what is saved, evaluated and kept at its best
    model: nn.Module  # what trains: ``net``, or under torchrun ``net`` in DistributedDataParallel
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    criterion: nn.Module
    aux_weight: float
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"top1": -1.0, "loss": math.inf, "epoch": -1})
    best_state: dict[str, Tensor] | None = None
    bad_epochs: int = 0  # epochs since the best one
    next_epoch: int = 0
    seconds_before: float = 0.0  # the training time before a resume
    started: float = 0.0  # time.perf_counter() when this process's first epoch began

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def out_of_patience(self, recipe: Recipe) -> bool:
        return recipe.patience is not None and self.bad_epochs >= recipe.patience


# ----------------------------------------------------------------------------------------- loop


def fit(run: Run) -> TrainResult:
    """Train ``run`` for its recipe's epochs (fewer on early stopping), test the best weights, write the files."""
    config, recipe = run.config, run.recipe
    state = _set_up(run)
    if config.resume:
        _resume(run, state)
    show = _show_progress(config, run.env)
    state.started = time.perf_counter()
    # A resumed run that had already run out of patience has nothing left to do.
    stopped_early = state.out_of_patience(recipe)
    for epoch in range(state.next_epoch, recipe.epochs if not stopped_early else state.next_epoch):
        t0 = time.perf_counter()
        train = _train_epoch(run, state, epoch, show)
        val = _evaluate(run, state.net, run.data.val)
        row = _record_epoch(state, epoch, train, val, seconds=time.perf_counter() - t0)
        improved = _keep_best(state, val, epoch)
        _log_epoch(run, row, improved)
        if run.env.main and config.last != "none":
            _write_last(run, state, epoch)
        if config.stop_after is not None and config.stop_after <= epoch + 1 < recipe.epochs:
            log.info("stopping after epoch %d as asked; --resume continues", epoch + 1)
            barrier(run.env)
            return TrainResult(config.model, run.out, run.out / LAST, {"stopped_after": epoch + 1})
        if state.out_of_patience(recipe):
            log.info("%s: no better validation top-1 for %d epochs; stopping early", config.model, state.bad_epochs)
            stopped_early = True
            break
    return _finish(run, state, state.seconds(), stopped_early)


def _set_up(run: Run) -> FitState:
    """The network on its device (in DistributedDataParallel under torchrun), its optimizer, schedule and loss."""
    recipe, device = run.recipe, run.device
    net = run.model.to(device)
    if recipe.channels_last:
        net = net.to(memory_format=torch.channels_last)
    model: nn.Module = net
    if run.env.distributed:
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(net, device_ids=ids)
    optimizer = _optimizer(run.groups, recipe)
    if run.batch != recipe.batch_size:
        log.info("batch size %d (the whole training set of %d images)", run.batch, run.data.sizes["train"])
    return FitState(
        net=net,
        model=model,
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(recipe, run.steps)),
        scaler=torch.amp.GradScaler("cuda", enabled=run.precision.scaled),
        criterion=nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing),
        aux_weight=float(getattr(net, "aux_weight", 0.3)),
    )


def _resume(run: Run, state: FitState) -> None:
    """Go on from ``last.pt`` if there is one: its weights, optimizer, schedule, scaler and progress."""
    config, path = run.config, run.out / LAST
    if not path.is_file():
        log.warning("--resume: no %s yet; starting from the beginning", path)
        return
    ckpt = read_checkpoint(path)
    if ckpt.training is None or ckpt.meta.model != config.model or ckpt.meta.dataset != run.data.name:
        raise WeightsError(
            f"{path} is from {ckpt.meta.model} on {ckpt.meta.dataset}, not {config.model} on {run.data.name}; "
            "use another --out or drop --resume"
        )
    saved = ckpt.training
    state.net.load_state_dict(ckpt.state_dict)
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scheduler.load_state_dict(saved["scheduler"])
    if saved.get("scaler"):
        state.scaler.load_state_dict(saved["scaler"])
    state.history, state.best, state.bad_epochs = list(saved["history"]), dict(saved["best"]), int(saved["bad_epochs"])
    state.seconds_before = float(saved["seconds"])
    state.next_epoch = int(saved["epoch"]) + 1
    state.best_state = saved.get("best_state")
    if state.best_state is None:  # the best weights were the saved ones
        state.best_state = {k: v.clone() for k, v in state.net.state_dict().items()}
    log.info("resuming %s from %s after epoch %d", config.model, path, state.next_epoch)


def _train_epoch(run: Run, state: FitState, epoch: int, show: bool) -> list[float]:
    """One pass over the training data: loss × images, hits and images, summed over the processes."""
    config, env = run.config, run.env
    seed_everything(config.seed * 1000 + epoch)
    state.model.train()
    if run.frozen:
        freeze_modes(state.net)
    sums = [0.0, 0.0, 0.0]  # loss * n, hits, n
    loader = train_loader(
        run.data.train,
        run.batch,
        seed=config.seed,
        epoch=epoch,
        rank=env.rank,
        world_size=env.world_size,
        workers=run.workers,
    )
    bar = tqdm(
        total=run.steps,
        desc=f"{config.model} {epoch + 1}/{run.recipe.epochs}",
        file=sys.stderr,
        disable=not show,
        leave=False,
        dynamic_ncols=True,
        unit="batch",
    )
    for step, (x, y) in enumerate(loader):
        if step >= run.steps:
            break
        x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
        loss, logits = _train_step(run, state, x, y, epoch, step)
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
    return all_reduce(sums, env, run.device)


def _train_step(run: Run, state: FitState, x: Tensor, y: Tensor, epoch: int, step: int) -> tuple[Tensor, Tensor]:
    """One optimizer step on the batch ``x, y``; its loss and main logits."""
    if run.data.augment is not None:
        # Seeded by the batch's place alone: a resumed run augments as an uninterrupted one would.
        gen = torch.Generator().manual_seed(run.config.seed * 1_000_003 + epoch * 10_007 + step)
        x = run.data.augment(x, gen, (run.env.rank, run.env.world_size))
    if run.recipe.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with run.precision.autocast():
        loss, logits = _loss(state.model(x), y, state.criterion, state.aux_weight)
    state.optimizer.zero_grad(set_to_none=True)
    state.scaler.scale(loss).backward()
    if run.recipe.grad_clip is not None:
        state.scaler.unscale_(state.optimizer)
        nn.utils.clip_grad_norm_(state.net.parameters(), run.recipe.grad_clip)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.scheduler.step()
    return loss, logits


def _evaluate(run: Run, net: nn.Module, dataset: Any) -> dict[str, float]:
    return evaluate_model(
        net,
        dataset,
        batch_size=256,
        device=run.device,
        env=run.env,
        channels_last=run.recipe.channels_last,
        workers=run.workers,
    )


def _record_epoch(
    state: FitState, epoch: int, train: list[float], val: dict[str, float], seconds: float
) -> dict[str, Any]:
    """The epoch's row of the history: training loss and top-1, validation scores, learning rate, time."""
    loss_sum, hits, count = train
    row = {
        "epoch": epoch + 1,
        "train_loss": loss_sum / count,
        "train_top1": 100.0 * hits / count,
        "val_loss": val["loss"],
        "val_top1": val["top1"],
        "val_top5": val["top5"],
        "lr": max(g["lr"] for g in state.optimizer.param_groups),
        "seconds": seconds,
    }
    state.history.append(row)
    return row


def _keep_best(state: FitState, val: dict[str, float], epoch: int) -> bool:
    """Whether ``val`` beats the best so far (top-1, then loss); if so, the current weights become the best."""
    improved = (val["top1"], -val["loss"]) > (state.best["top1"], -state.best["loss"])
    if improved:
        state.best = {"top1": val["top1"], "loss": val["loss"], "epoch": epoch}
        state.best_state = {k: v.detach().to("cpu", copy=True) for k, v in state.net.state_dict().items()}
        state.bad_epochs = 0
    else:
        state.bad_epochs += 1
    return improved


def _log_epoch(run: Run, row: dict[str, Any], improved: bool) -> None:
    log.info(
        "%s epoch %d/%d: train loss %.4f top-1 %.2f%% | val loss %.4f top-1 %.2f%%%s | %.1fs",
        run.config.model,
        row["epoch"],
        run.recipe.epochs,
        row["train_loss"],
        row["train_top1"],
        row["val_loss"],
        row["val_top1"],
        " *" if improved else "",
        row["seconds"],
    )


def _write_last(run: Run, state: FitState, epoch: int) -> None:
    """``last.pt``: the weights after ``epoch`` and all that ``--resume`` needs to go on from there."""
    training = {
        "epoch": epoch,
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "scaler": state.scaler.state_dict() if run.precision.scaled else None,
        "history": state.history,
        "best": state.best,
        "bad_epochs": state.bad_epochs,
        "seconds": state.seconds(),
        # The best weights, unless they are the ones being saved anyway.
        "best_state": None if state.best["epoch"] == epoch else state.best_state,
    }
    save_checkpoint(run.out / LAST, state.net, dataclasses.replace(run.checkpoint_meta(), epoch=epoch + 1), training)


def _finish(run: Run, state: FitState, seconds: float, stopped_early: bool) -> TrainResult:
    """Test the best weights; rank 0 writes them to ``checkpoint.pt`` with ``metrics.json``."""
    if state.best_state is not None:
        state.net.load_state_dict(state.best_state)
    test = _evaluate(run, state.net, run.data.test)
    options = dict(run.model_options)
    if callable(getattr(state.net, "drop_aux", None)):
        state.net.drop_aux()  # the auxiliary classifiers only serve training
        options["aux_logits"] = False
    state.net = state.net.to(memory_format=torch.contiguous_format)
    metrics = _metrics(run, state, test, seconds, stopped_early)
    path = run.out / CHECKPOINT
    if run.env.main:
        without_history = {k: v for k, v in metrics.items() if k != "history"}
        final = dataclasses.replace(
            run.checkpoint_meta(), model_options=options, metrics=without_history, epoch=state.best["epoch"] + 1
        )
        save_checkpoint(path, state.net, final)
        (run.out / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
        if run.config.last != "keep":
            (run.out / LAST).unlink(missing_ok=True)
        log.info("%s: wrote %s and %s", run.config.model, path, run.out / METRICS)
    barrier(run.env)
    return TrainResult(run.config.model, run.out, path, metrics)


def _metrics(run: Run, state: FitState, test: dict[str, float], seconds: float, stopped_early: bool) -> dict[str, Any]:
    """``metrics.json``: the test scores, the run's course and everything needed to reproduce it."""
    data, net = run.data, state.net
    return {
        "model": run.config.model,
        **data.describe(),
        "image_size": data.preprocessing.image_size,
        "in_channels": data.preprocessing.channels,
        "test_top1": test["top1"],
        "test_top5": test["top5"],
        "test_loss": test["loss"],
        "val_top1": state.best["top1"],
        "best_epoch": state.best["epoch"] + 1,
        "epochs": len(state.history),
        "epochs_planned": run.recipe.epochs,
        "stopped_early": stopped_early,
        "seconds": round(seconds, 3),
        "params": sum(p.numel() for p in net.parameters()),
        "trainable_params": trainable_parameters(net),
        **run.extra,
        "recipe": run.recipe.to_dict(),
        "batch_size": run.batch,
        "seed": run.config.seed,
        "device": str(run.device),
        "amp": run.precision.name,
        "world_size": run.env.world_size,
        "threads": run.threads,
        "torch": str(torch.__version__),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s)",
        "history": state.history,
    }


# -------------------------------------------------------------------------------------- helpers


def _show_progress(config: TrainConfig, env: DistEnv) -> bool:
    if not env.main or config.quiet:
        return False
    if config.progress is not None:
        return config.progress
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("1", "true", "yes")


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
