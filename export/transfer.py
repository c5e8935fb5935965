"""``python -m export transfer-experiment``: the three transfer-learning modes side by side (seed 004).

A source task with plenty of data (digits 0-4, every training image) trains a network; a
related target task with little labelled data (digits 5-9, ``K`` images per class) is then
learnt three ways from that checkpoint: ``feature-extract`` (only the new head trains),
``finetune`` (everything, the backbone at a tenth of the rate) and ``scratch`` (no pretrained
weights, the baseline). Every mode runs with several seeds (the few target images are drawn
once, the seeds change initialisation and order); the page reports the mean and spread of
the target test top-1, the trainable parameters and the time, and the command to reproduce.
"""

from __future__ import annotations

import logging
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .train import FINETUNE_MODES, FinetuneConfig, TrainConfig, finetune, train

__all__ = ["TransferExperiment", "TransferResult", "run_experiment", "write_page"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransferExperiment:
    model: str = "resnet18"
    source: str = "digits:0-4"
    target_classes: str = "5-9"
    per_class: int = 10
    seeds: tuple[int, ...] = (0, 1, 2)
    out: Path = Path("runs/transfer")

    @property
    def target(self) -> str:
        return f"digits:{self.target_classes}:{self.per_class}"


@dataclass
class ModeRuns:
    mode: str
    top1: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    trainable: int = 0
    params: int = 0
    epochs: int = 0

    @property
    def mean(self) -> float:
        return statistics.fmean(self.top1)

    @property
    def spread(self) -> float:
        return statistics.stdev(self.top1) if len(self.top1) > 1 else 0.0


@dataclass
class TransferResult:
    experiment: TransferExperiment
    source_metrics: dict[str, Any]
    modes: dict[str, ModeRuns]
    target_sizes: dict[str, int]
    seconds: float


def run_experiment(experiment: TransferExperiment, *, quiet: bool = True) -> TransferResult:
    """Train the source network once, then every mode with every seed on the target task."""
    started = time.perf_counter()
    out = experiment.out
    log.info("source: %s on %s", experiment.model, experiment.source)
    source = train(TrainConfig(model=experiment.model, data=experiment.source, out=out / "source", quiet=quiet,
                               last="none"))  # fmt: skip
    modes: dict[str, ModeRuns] = {}
    sizes: dict[str, int] = {}
    for mode in FINETUNE_MODES:
        runs = modes[mode] = ModeRuns(mode)
        for seed in experiment.seeds:
            log.info("target: %s, seed %d", mode, seed)
            result = finetune(FinetuneConfig(
                model=experiment.model, data=experiment.target, mode=mode, seed=seed, quiet=quiet, last="none",
                source=None if mode == "scratch" else source.checkpoint, out=out / f"{mode}-seed{seed}",
            ))  # fmt: skip
            m = result.metrics
            runs.top1.append(m["test_top1"])
            runs.seconds.append(m["seconds"])
            runs.trainable, runs.params, runs.epochs = m["trainable_params"], m["params"], m["epochs"]
            sizes = m["split_sizes"]
    return TransferResult(experiment, source.metrics, modes, sizes, time.perf_counter() - started)


def _verdict(result: TransferResult) -> str:
    ranked = sorted(result.modes.values(), key=lambda r: -r.mean)
    best, scratch = ranked[0], result.modes["scratch"]
    return (
        f"In this run `{best.mode}` learnt the target best ({best.mean:.1f}%), "
        + ", ".join(f"`{r.mode}` {r.mean:.1f}%" for r in ranked[1:])
        + f": {best.mean - scratch.mean:+.1f} points over training from scratch"
        + (f" while training {best.trainable / best.params:.1%} of the parameters." if best.trainable < best.params else ".")
    )


def write_page(result: TransferResult, path: Path, command: str) -> Path:
    e, src = result.experiment, result.source_metrics
    rows = "\n".join(
        f"| `{r.mode}` | **{r.mean:.1f}** ± {r.spread:.1f} | {min(r.top1):.1f} - {max(r.top1):.1f} | "
        f"{r.trainable:,} of {r.params:,} ({100 * r.trainable / r.params:.2g}%) | {r.epochs} | "
        f"{statistics.fmean(r.seconds):.1f} |"
        for r in result.modes.values()
    )
    sizes = result.target_sizes
    text = f"""# Transfer learning: feature extraction, fine-tuning and training from scratch

Seed 004's question, measured: with a network trained on a task with plenty of data, how best
to learn a related task from very few labelled images?

- **Source task**: `{e.source}`, digits 0-4 with every training image ({src['split_sizes']['train']} images);
  `{e.model}` reaches {src['test_top1']:.1f}% test top-1 on it ({src['epochs']} epochs, {src['seconds']:.0f} s).
- **Target task**: `{e.target}`, digits 5-9 with **{e.per_class} labelled images per class** ({sizes['train']} training
  and {sizes['val']} validation images); tested on all {sizes['test']} test images of those classes.
- Every mode starts from the source checkpoint (but `scratch`), replaces the 5-class head by a new one for the
  target classes and trains with the network's fine-tuning recipe; {len(e.seeds)} seeds each (mean ± standard
  deviation).

| mode | target test top-1 % | range | trainable parameters | epochs | seconds per run |
|---|---|---|---|---|---|
{rows}

`feature-extract` trains only the new head on the frozen pretrained features (BatchNorm statistics frozen too);
`finetune` trains every layer, the pretrained ones at a tenth of the head's learning rate; `scratch` is the same
network from random weights. {_verdict(result)}

Reproduce ({platform.machine()}, {result.seconds / 60:.1f} minutes here):

```bash
{command}
```
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
