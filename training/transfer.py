"""``python -m training transfer-experiment``: the three transfer-learning modes side by side.

A source task with plenty of data (digits 0-4, every training image) trains a network; a
related target task with little labelled data (digits 5-9, ``K`` images per class, for a few
values of ``K``) is then learnt three ways from that checkpoint: ``feature-extract`` (only the new head trains),
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
    per_class: tuple[int, ...] = (5, 10, 25)
    seeds: tuple[int, ...] = (0, 1, 2)
    out: Path = Path("runs/transfer")

    def target(self, per_class: int) -> str:
        return f"digits:{self.target_classes}:{per_class}"


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
    runs: dict[int, dict[str, ModeRuns]]  # images per class -> mode -> runs
    target_sizes: dict[int, dict[str, int]]
    seconds: float


def run_experiment(experiment: TransferExperiment, *, quiet: bool = True) -> TransferResult:
    """Train the source network once, then every mode with every seed on the target task."""
    started = time.perf_counter()
    out = experiment.out
    log.info("source: %s on %s", experiment.model, experiment.source)
    source = train(
        TrainConfig(model=experiment.model, data=experiment.source, out=out / "source", quiet=quiet, last="none")
    )
    runs: dict[int, dict[str, ModeRuns]] = {}
    sizes: dict[int, dict[str, int]] = {}
    for k in experiment.per_class:
        runs[k] = {}
        for mode in FINETUNE_MODES:
            mode_runs = runs[k][mode] = ModeRuns(mode)
            for seed in experiment.seeds:
                log.info("target: %d per class, %s, seed %d", k, mode, seed)
                result = finetune(
                    FinetuneConfig(
                        model=experiment.model,
                        data=experiment.target(k),
                        mode=mode,
                        seed=seed,
                        quiet=quiet,
                        last="none",
                        source=None if mode == "scratch" else source.checkpoint,
                        out=out / f"k{k}-{mode}-seed{seed}",
                    )
                )
                m = result.metrics
                mode_runs.top1.append(m["test_top1"])
                mode_runs.seconds.append(m["seconds"])
                mode_runs.trainable, mode_runs.params, mode_runs.epochs = (
                    m["trainable_params"],
                    m["params"],
                    m["epochs"],
                )
                sizes[k] = m["split_sizes"]
    return TransferResult(experiment, source.metrics, runs, sizes, time.perf_counter() - started)


def _verdict(result: TransferResult) -> str:
    lines = []
    for k, modes in result.runs.items():
        ranked = sorted(modes.values(), key=lambda r: -r.mean)
        best, scratch = ranked[0], modes["scratch"]
        lines.append(
            f"- {k} images per class: `{best.mode}` best ({best.mean:.1f}%), then "
            + ", ".join(f"`{r.mode}` {r.mean:.1f}%" for r in ranked[1:])
            + f"; pretrained weights {'gain' if best is not scratch else 'lose'} "
            + f"{abs(max(modes['finetune'].mean, modes['feature-extract'].mean) - scratch.mean):.1f} points "
            + "against training from scratch."
        )
    return "\n".join(lines)


def _share(trainable: int, params: int) -> str:
    share = 100 * trainable / params
    return "all" if trainable == params else f"{trainable:,} ({share:.2g}%)"


def write_page(result: TransferResult, path: Path, command: str) -> Path:
    e, src = result.experiment, result.source_metrics
    ks = list(result.runs)
    first = result.runs[ks[0]]
    header = " | ".join(f"{k} per class: test top-1 %" for k in ks)
    rows = "\n".join(
        f"| `{mode}` | "
        + " | ".join(f"**{result.runs[k][mode].mean:.1f}** ± {result.runs[k][mode].spread:.1f}" for k in ks)
        + f" | {_share(first[mode].trainable, first[mode].params)} | "
        + " / ".join(f"{statistics.fmean(result.runs[k][mode].seconds):.1f}" for k in ks)
        + " |"
        for mode in FINETUNE_MODES
    )
    sizes = ", ".join(
        f"{k}: {s['train']} training + {s['val']} validation images" for k, s in result.target_sizes.items()
    )
    test_size = next(iter(result.target_sizes.values()))["test"]
    text = f"""# Transfer learning: feature extraction, fine-tuning and training from scratch

The transfer-learning lecture's question, measured: with a network trained on a task with plenty of data, how best
to learn a related task from very few labelled images?

- **Source task**: `{e.source}`, digits 0-4 with every training image ({src["split_sizes"]["train"]} images);
  `{e.model}` reaches {src["test_top1"]:.1f}% test top-1 on it ({src["epochs"]} epochs, {src["seconds"]:.0f} s).
- **Target task**: digits 5-9 (`digits:{e.target_classes}:K`) with only **K labelled images per class**
  (K {sizes}); tested on all {test_size} test images of those classes.
- Every mode but `scratch` starts from the source checkpoint and replaces its 5-class head by a new one for the
  target classes; all train with the network's fine-tuning recipe ({first["finetune"].epochs} epochs);
  {len(e.seeds)} seeds each (mean ± standard deviation over seeds).

| mode | {header} | trainable parameters | seconds per run |
|---|{"---|" * len(ks)}---|---|
{rows}

`feature-extract` trains only the new head on the frozen pretrained features (BatchNorm statistics frozen too);
`finetune` trains every layer, the pretrained ones at a tenth of the head's learning rate; `scratch` is the same
network from random weights. In this run:

{_verdict(result)}

Reproduce ({platform.machine()}, {result.seconds / 60:.1f} minutes here):

```bash
{command}
```
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
