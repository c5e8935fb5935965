"""``python -m export report``: ``docs/published-models.md`` from the published model cards.

One row per model of the repository (latest version): parameters and multiply-adds at the
trained resolution, test top-1/top-5 (PyTorch at training, and again through ONNX Runtime),
epochs and training time on the machine that built it, the INT8 variant's accuracy and speed
against float32, and the command that reproduces the row. Everything comes from the cards,
so the page always describes what is actually served.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repository import ModelCard, Repository

__all__ = ["write_published_page", "zoo_rows"]


def _fmt_count(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def _num(value: Any, digits: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _parity(row: dict[str, Any]) -> str:
    def sci(v: float | None) -> str:
        return "-" if v is None else f"{v:.1e}"

    text = f"{sci(row['parity_real'])} / {sci(row['parity_random'])}"
    logit = row["max_abs_logit"] or 0.0
    return text + (f" (logits up to {logit:,.0f})" if logit > 100 else "")


def zoo_rows(cards: Sequence[ModelCard]) -> list[dict[str, Any]]:
    """What the page shows of each card, as plain values (tests check these)."""
    rows = []
    for card in cards:
        version = card.versions[card.latest_version]
        training, check = version.training, version.verification
        metrics, parity, speed = training.metrics, check.parity, check.speed
        int8 = version.variants.get("int8")
        fp32_ms = speed.fp32.get("latency_ms_b1") if speed else None
        int8_ms = speed.int8.get("latency_ms_b1") if speed and speed.int8 else None
        rows.append(
            {
                "name": card.name,
                "params": card.summary.total_params,
                "macs": card.summary.total_macs,
                "input": "x".join(map(str, card.input.shape)),
                "test_top1": metrics.test_top1 if metrics else None,
                "test_top5": metrics.test_top5 if metrics else None,
                "onnx_top1": check.top1("fp32"),
                "handwriting": {p: r.top1 for p, r in check.handwriting.items()} if check.handwriting else None,
                "epochs": training.epochs,
                "best_epoch": training.best_epoch,  # 1-based, as in metrics.json
                "seconds": training.seconds,
                "int8_top1": check.top1("int8"),
                "int8_published": bool(int8 and int8.published),
                "int8_reason": int8.reason if int8 else "not built",
                "fp32_ms_b1": fp32_ms,
                "int8_ms_b1": int8_ms,
                "int8_speedup_b1": fp32_ms / int8_ms if fp32_ms and int8_ms else None,
                "parity_real": parity.real.max_abs_diff if parity and parity.real else None,
                "parity_random": parity.random.max_abs_diff if parity else None,
                "max_abs_logit": parity.max_abs_logit if parity else None,
                "quick": card.quick,
                "machine": training.machine,
                "device": training.device,
            }
        )
    return rows


COLUMNS = (
    "network",
    "input",
    "params",
    "MACs",
    "test top-1 %",
    "top-5 %",
    "ONNX top-1 %",
    "handwriting top-1 % (light / dark)",
    "epochs (best)",
    "train s",
    "INT8 top-1 %",
    "fp32 b1 ms",
    "INT8 b1 ms",
    "INT8 speed-up",
    "parity real / random",
    "reproduce",
)


def _table_head() -> str:
    return "| " + " | ".join(COLUMNS) + " |\n" + "|---" * len(COLUMNS) + "|"


def _handwriting(r: dict[str, Any]) -> str:
    checked = r["handwriting"]
    if not checked:
        return "–"
    return " / ".join(_num(checked.get(p)) for p in ("light-on-dark", "dark-on-light"))


def _table_row(r: dict[str, Any]) -> str:
    int8 = (
        f"{_num(r['int8_top1'])}"
        if r["int8_published"]
        else f"not published: {r['int8_reason']}"
        if r["int8_top1"] is None
        else f"{_num(r['int8_top1'])} (not published)"
    )
    bar = "" if r["test_top1"] is None else (" ✗" if r["test_top1"] < (98 if r["name"] == "lenet5" else 97) else "")
    return (
        f"| `{r['name']}` | {r['input']} | {r['params']:,} | {_fmt_count(r['macs'])} | "
        f"**{_num(r['test_top1'])}**{bar} | {_num(r['test_top5'])} | {_num(r['onnx_top1'])} | {_handwriting(r)} | "
        f"{r['epochs']} ({r['best_epoch']}) | {_num(r['seconds'], 1)} | {int8} | {_num(r['fp32_ms_b1'], 3)} | "
        f"{_num(r['int8_ms_b1'], 3)} | {_num(r['int8_speedup_b1'])}x | {_parity(r)} | "
        f"`python -m training train {r['name']}` |"
    )


def write_published_page(repository: Path, path: Path) -> Path:
    repo = Repository(repository)
    cards = [repo.load_card(name) for name in repo.names()]
    from training.recipes import DEFAULT_SET

    order = {n: i for i, n in enumerate(DEFAULT_SET)}
    cards.sort(key=lambda c: (order.get(c.name, len(order)), c.name))
    rows = zoo_rows(cards)
    lines = [_table_row(r) for r in rows]
    total = sum(r["seconds"] or 0 for r in rows)
    machines = (
        ", ".join(sorted({f"{r['machine']} ({r['device']})" for r in rows if r["machine"]})) or "an unrecorded machine"
    )
    quick = any(r["quick"] for r in rows)
    met = sum(1 for r in rows if r["test_top1"] is not None and r["test_top1"] >= (98 if r["name"] == "lenet5" else 97))
    text = (
        f"""# The model zoo, trained

Every network of the default set trained from scratch on scikit-learn's handwritten digits (1,797 real 8x8
images, 10 classes; a fixed stratified split of 1,259 train / 179 validation / 359 test images), exported to
ONNX and published by `python -m export build`. This page is written from the published model cards by
`python -m export report`.{" **QUICK BUILD: these are smoke-test models, not trained ones.**" if quick else ""}

- **{met} of {len(rows)}** networks reach the bar (97% test top-1, LeNet-5 98%); training all of them took
  **{total / 60:.1f} minutes** (export not counted) on {machines}.
- MACs are multiply-accumulates of convolutions and linear layers at the trained resolution (the served input).
- Test top-1/top-5: PyTorch on the 359 test images at the end of training (best validation epoch); "ONNX" is the
  same float32 model measured again through ONNX Runtime.
- Handwriting: the float32 model's top-1 on the handwriting check set (`export/handwriting.py`: 200 digits drawn
  as pen strokes in each polarity, white on black as on the page's canvas / dark ink on paper as in a photo;
  never trained on), each prepared by the card's `input.digits` as the service prepares an image.
- INT8: static quantization (QDQ, per-channel weights, calibrated on 256 training images), its test top-1, and
  its batch-1 latency against float32 as the build measured it (ONNX Runtime, CPU, median of a short run;
  `docs/benchmarks.md` has the careful side-by-side numbers). A variant more than 1 point below float32 is not
  published.
- Parity: the largest |logit difference| between ONNX Runtime and PyTorch on real (test) / random (standard
  normal) inputs; the bound is 1e-4, or ten parts in a million of the largest logit where logits exceed 10 (a
  float32 ulp at 1,024 is 1.2e-4): random inputs are far from the digits and drive some networks' logits past 1,000.

{_table_head()}
"""
        + "\n".join(lines)
        + """

`python -m training train NAME` trains with the network's recipe (`training/recipes.py`: optimizer, learning rate,
schedule, epochs, batch size, resolution) and writes `runs/NAME/metrics.json` with the per-epoch history;
`python -m export build` trains, exports and publishes the whole set.
"""
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
