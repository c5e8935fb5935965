"""``docs/benchmarks.md``: the targets first, then one section per benchmark, tables and PNG plots.

Everything written here comes from a :class:`Results` of one run; the raw numbers also go to a
JSON file next to the plots, so a reader can check any figure of the page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .batching import BatchingResult
from .config import OLD_CONFIGURATION, BenchConfig
from .handwriting import HandwritingResult
from .int8 import Int8Result
from .machine import Machine
from .overhead import OverheadResult
from .protocols import BASELINE, ProtocolsResult
from .runtime import RuntimeResult
from .startup import StartupResult
from .stats import Target
from .workers import WorkersResult

__all__ = ["Results", "write_report"]


@dataclass
class Results:
    config: BenchConfig
    machine: Machine
    command: str
    repository: Path
    runtime: RuntimeResult | None = None
    overhead: OverheadResult | None = None
    batching: BatchingResult | None = None
    int8: Int8Result | None = None
    startup: StartupResult | None = None
    workers: WorkersResult | None = None
    protocols: ProtocolsResult | None = None
    handwriting: HandwritingResult | None = None
    seconds: float = 0.0
    plots: list[Path] = field(default_factory=list)

    def targets(self) -> list[Target]:
        """The targets of this run (retired ones are :meth:`information`)."""
        return [t for t in self._measured_targets() if not t.retired]

    def information(self) -> list[Target]:
        """Former targets, still measured, reported outside the count."""
        return [t for t in self._measured_targets() if t.retired]

    def _measured_targets(self) -> list[Target]:
        out: list[Target] = []
        if self.runtime:
            out += self.runtime.targets()
        if self.overhead:
            out += self.overhead.targets(self.config.overhead_models[0])
        if self.batching:
            out += self.batching.targets(self.config)
        if self.int8:
            out += self.int8.targets()
        if self.workers:
            out += self.workers.targets()
        if self.protocols:
            out += self.protocols.targets()
        if self.handwriting:
            out += self.handwriting.targets()
        return out

    def to_dict(self) -> dict[str, Any]:
        parts = ("runtime", "overhead", "batching", "int8", "startup", "workers", "protocols", "handwriting")
        return {
            "command": self.command,
            "repository": str(self.repository),
            "seconds": self.seconds,
            "config": self.config.to_dict(),
            "machine": self.machine.to_dict(),
            "targets": [t.to_dict() for t in self.targets()],
            "information": [t.to_dict() for t in self.information()],
            **{p: getattr(self, p).to_dict() for p in parts if getattr(self, p) is not None},
        }


# ------------------------------------------------------------------------------------ formatting


def _num(value: float | None, digits: int = 2, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}{unit}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _target_value(t: Target) -> str:
    digits = 3 if t.unit == "ms" and t.known and abs(t.value) < 1 else 2
    return _num(t.value, digits, t.unit)


def _information_table(retired: list[Target]) -> str:
    if not retired:
        return ""
    rows = [(t.name, _target_value(t), f"{t.comparison} {_num(t.bound, 2)}{t.unit}", t.retired, t.why) for t in retired]
    table = _table(("measurement", "value", "former bound", "why not a target", "what it shows"), rows)
    return f"\nMeasured for information, out of the count (former targets):\n\n{table}\n"


def _targets_section(targets: list[Target], retired: list[Target]) -> str:
    met = sum(t.met for t in targets)
    rows = []
    for t in targets:
        verdict = "met" if t.met else ("not measured" if not t.known else "**missed**")
        margin = "" if math.isnan(t.margin) else f"{t.margin:+.0%}"
        rows.append(
            (
                t.name,
                _target_value(t),
                f"{t.comparison} {_num(t.bound, 2)}{t.unit}",
                verdict,
                margin,
                "" if t.met else t.why.replace("|", "/"),
            )
        )
    table = _table(("target", "measured", "bound", "", "margin", "why (when missed)"), rows)
    return f"## Targets\n\n{met} of {len(targets)} met in this run.\n\n{table}\n{_information_table(retired)}"


def _machine_section(m: Machine, config: BenchConfig) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in m.versions.items())
    return (
        "## Machine\n\n"
        f"- CPU: {m.cpu_model}, {m.usable_cpus} usable of {m.logical_cpus} logical CPUs; {m.memory_gib:.1f} GiB;"
        f" {m.os}; Python {m.python}\n"
        f"- memory bandwidth (one core, numpy copy): {m.memory_bandwidth_gbs:.1f} GB/s;"
        f" load average at the start {m.load_average[0]:.2f}\n"
        f"- ONNX Runtime providers: {', '.join(m.onnxruntime_providers)}\n"
        f"- {versions}\n"
        f"- commit {m.git_commit}{' (with uncommitted changes)' if m.git_dirty else ''};"
        f" {'the --quick preset: tiny samples, numbers are not meaningful' if config.quick else 'the full preset'}\n"
    )


def _runtime_section(r: RuntimeResult, plot: str | None) -> str:
    rows = [
        (
            row.model,
            "x".join(map(str, row.input_shape)) or "-",
            row.threads,
            _num(row.torch_b1_ms, 3),
            _num(row.ort_b1_ms, 3),
            f"**{_num(row.speedup_b1)}x**" if not row.error else row.error,
            f"{_num(row.speedup_b1_range[0])}-{_num(row.speedup_b1_range[1])}",
            _num(row.torch_batch_ips, 0),
            _num(row.ort_batch_ips, 0),
            f"{_num(row.speedup_batch)}x",
        )
        for row in r.rows
    ]
    table = _table(
        (
            "network",
            "input",
            "threads",
            "PyTorch b1 ms",
            "ORT b1 ms",
            "ORT speed-up b1",
            "per round",
            f"PyTorch b{r.batch} img/s",
            f"ORT b{r.batch} img/s",
            f"speed-up b{r.batch}",
        ),
        rows,
    )
    profiles = [
        f"- **{row.model}** ({row.threads} thread(s)): {row.profile['summary']}" for row in r.rows if row.profile
    ]
    text = (
        "## 1. Runtime: ONNX Runtime vs PyTorch eager\n\n"
        "Random weights at the served resolution, exported exactly as served (logits and softmax); both runtimes "
        "with the same thread count, timed interleaved; medians of every call, per-round ratio range.\n\n"
        f"{table}\n"
    )
    if profiles:
        text += "\nProfiles of the networks under the 1.4x target:\n\n" + "\n".join(profiles) + "\n"
    if plot:
        text += f"\n![ONNX Runtime speed-up at batch 1]({plot})\n"
    return text


def _overhead_section(r: OverheadResult) -> str:
    if r.error and not r.rows:
        return f"## 2. Server overhead\n\nnot measured: {r.error}\n"
    rows = [
        (
            row.model,
            row.server,
            row.kind,
            f"{row.body_bytes:,}",
            _num(row.e2e_ms.p50, 3),
            _num(row.e2e_ms.p99, 3),
            _num(row.bare_ms.p50, 3),
            _num(row.overhead_p50_ms, 3),
            _num(row.overhead_p99_ms, 3),
            _num(row.decode_ms.p50 if row.decode_ms else None, 3),
            _num(row.queue_ms.p50 if row.queue_ms else None, 3),
            _num(row.client_cpu_ms, 3),
        )
        for row in r.rows
    ]
    table = _table(
        (
            "model",
            "server",
            "input",
            "body bytes",
            "e2e p50 ms",
            "e2e p99 ms",
            "session.run p50 ms",
            "overhead p50 ms",
            "overhead p99 ms",
            "decode p50 ms",
            "queue p50 ms",
            "client CPU ms",
        ),
        rows,
    )
    settings = "; ".join(f"`{k}`: {v or 'the card'}" for k, v in r.settings.items())
    return (
        "## 2. Server overhead at concurrency 1\n\n"
        "`/predict` end to end over a keep-alive loopback connection minus the bare `session.run` on the same "
        "tensor, alternating request and bare run. `decode` is the server's preprocessing (body, image decode, "
        f"resize, normalise), `queue` the wait in the batch queue. Servers: {settings}.\n\n{table}\n"
    )


def _batching_rows(r: BatchingResult) -> list[tuple[Any, ...]]:
    rows = []
    for lv in r.levels:
        on, off = lv.modes.get("on"), lv.modes.get("off")
        rows.append(
            (
                lv.model,
                lv.payload,
                lv.concurrency,
                _num(on.throughput if on else None, 0),
                _num(on.latency_ms.p50 if on else None),
                _num(on.latency_ms.p99 if on else None),
                _num(off.throughput if off else None, 0),
                _num(off.latency_ms.p50 if off else None),
                _num(off.latency_ms.p99 if off else None),
                _num(lv.ceiling, 0),
                f"{lv.ceiling_fraction:.0%}" if not math.isnan(lv.ceiling_fraction) else "-",
                f"{_num(lv.speedup)}x",
                _num(lv.healthz_ms.p99 if lv.healthz_ms else None),
                _num(on.loop_lag_p99_ms if on else None),
                _num(on.loop_cores if on else None),
                _num(on.other_cores if on else None),
                _num(on.client_cpu_share if on else None),
            )
        )
    return rows


_BATCHING_HEADER = (
    "model",
    "payload",
    "concurrency",
    "on req/s",
    "on p50 ms",
    "on p99 ms",
    "off req/s",
    "off p50 ms",
    "off p99 ms",
    "ceiling inputs/s",
    "on / ceiling",
    "on / off",
    "/healthz p99 ms",
    "on: loop lag p99 ms",
    "on: loop cores",
    "on: inference cores",
    "client cores",
)


def _old_rows(r: BatchingResult) -> list[tuple[Any, ...]]:
    rows = []
    for lv in r.levels:
        on, old = lv.modes.get("on"), lv.modes.get("old")
        if not on or not old:
            continue
        modes = list(lv.modes.values())
        rows.append(
            (
                lv.model,
                lv.payload,
                lv.concurrency,
                _num(on.throughput, 0),
                _num(old.throughput, 0),
                f"**{_num(lv.speedup_vs_old)}x**",
                _num(on.latency_ms.p99),
                _num(old.latency_ms.p99),
                _num(on.server_cpu_ms, 3),
                _num(old.server_cpu_ms, 3),
                f"{sum(m.checked for m in modes):,}",
                f"{sum(m.lost for m in modes)} / {sum(m.wrong for m in modes)}",
            )
        )
    return rows


def _batching_section(r: BatchingResult, plot: str | None) -> str:
    settings = "; ".join(
        f"{m}: max_batch_size {b.get('max_batch_size')}, max_queue_delay_microseconds "
        f"{b.get('max_queue_delay_microseconds')}"
        for m, b in r.batching.items()
    )
    errors = "".join(f"\n- {m}: not measured: {e}" for m, e in r.errors.items())
    old = _table(
        (
            "model",
            "payload",
            "concurrency",
            "new req/s",
            "old req/s",
            "new / old",
            "new p99 ms",
            "old p99 ms",
            "new: server CPU ms/request",
            "old: server CPU ms/request",
            "answers checked",
            "lost / wrong",
        ),
        _old_rows(r),
    )
    text = (
        "## 3. Dynamic batching under concurrency\n\n"
        "Closed-loop clients, each sending one tensor per request: `json` to `/predict`, `v2-binary` as raw bytes "
        "to `/v2/models/{name}/infer`, going through inputs of different top classes so that every answer is "
        "checked against its request. Three servers, measured in alternation: `on` is the service's defaults "
        f"with the card's batching ({settings}), `off` the same with `max_batch_size` 1, and `old` the old "
        f"configuration (`{OLD_CONFIGURATION}`: one process, every request through FastAPI's routing, no regrouping) "
        "with the card's batching. The ceiling is a bare session running the same inputs in full batches with the "
        "machine to itself; `/healthz` is probed from another process during the largest concurrency. `loop lag` is "
        "how late the server's event loops ran their timer during the `on` runs (`cnnserve_event_loop_lag_seconds`, "
        "p99 from the histogram's buckets, as PromQL's `histogram_quantile`): the wait any request has for its "
        "turn on a loop. The last three columns are the CPU the server's event-loop threads, its inference "
        "threads and the load generator used during the `on` runs, in cores.\n\n"
        f"{_table(_BATCHING_HEADER, _batching_rows(r))}\n{errors}\n"
        "### The new defaults against the old configuration\n\n"
        "The server's CPU time per request counts every process and thread of it (warm-up requests included); "
        "answers lost are those without a 200, wrong those naming another input's class (all three servers).\n\n"
        f"{old}\n"
    )
    if plot:
        text += f"\n![throughput under concurrency]({plot})\n"
    return text


def _workers_section(r: WorkersResult, plot: str | None) -> str:
    rows = []
    for row in r.rows:
        one = next((o for o in r.rows if o.model == row.model and o.workers == 1), None)
        m = row.result
        gain = m.throughput / one.result.throughput if one and one.result.throughput > 0 else math.nan
        rows.append(
            (
                row.model,
                row.concurrency,
                row.workers,
                _num(m.throughput, 0),
                f"{_num(gain)}x",
                _num(m.latency_ms.p50),
                _num(m.latency_ms.p99),
                _num(m.server_cpu_ms, 3),
                _num(m.loop_cores),
                _num(m.other_cores),
                _num(m.client_cpu_share),
                f"{m.lost} / {m.wrong}",
            )
        )
    header = (
        "model",
        "concurrency",
        "workers",
        "req/s",
        "vs 1 worker",
        "p50 ms",
        "p99 ms",
        "server CPU ms/request",
        "loop cores",
        "inference cores",
        "client cores",
        "lost / wrong",
    )
    errors = "".join(f"\n- {m}: not measured: {e}" for m, e in r.errors.items())
    text = (
        "## 6. Workers\n\n"
        "The same v2 binary load against servers with 1, 2, 4 and 8 worker processes (those this machine has "
        "CPUs for), the service's defaults otherwise (each worker gets its share of the usable CPUs as ONNX "
        "Runtime threads), measured in alternation; every answer checked.\n\n"
        f"{_table(header, rows)}\n{errors}"
    )
    if plot:
        text += f"\n![requests per second by worker processes]({plot})\n"
    return text


def _protocols_section(r: ProtocolsResult) -> str:
    rows = []
    for row in r.rows:
        m = row.result
        rows.append(
            (
                row.model,
                row.concurrency,
                row.protocol,
                _num(m.throughput, 0),
                f"{_num(r.ratio(row.model, row.protocol, 'throughput'))}x",
                _num(m.latency_ms.p50),
                _num(m.latency_ms.p99),
                f"{_num(r.ratio(row.model, row.protocol, 'p99'))}x",
                _num(m.server_cpu_ms, 3),
                _num(m.client_cpu_ms, 3),
                _num(m.client_cpu_share),
                f"{m.lost} / {m.wrong}",
            )
        )
    header = (
        "model",
        "concurrency",
        "protocol",
        "req/s",
        f"vs {BASELINE}",
        "p50 ms",
        "p99 ms",
        "p99 vs HTTP",
        "server CPU ms/request",
        "client CPU ms/request",
        "client cores",
        "lost / wrong",
    )
    errors = "".join(f"\n- {m}: not measured: {e}" for m, e in r.errors.items())
    return (
        "## 7. Protocols\n\n"
        "The Open Inference Protocol over gRPC beside HTTP v2 binary, against one server with the service's "
        "defaults: the same inputs as raw tensor bytes with the top class back (`classification: 1`), as unary "
        "`ModelInfer` calls and as `ModelStreamInfer` messages (one stream per connection), the three loads "
        "alternating round by round; every answer checked. The clients (`bench/loadgen.py`, "
        "`bench/grpc_load.py`: one request in flight per connection) run on the same cores as the server: "
        "their CPU per request is in the table.\n\n"
        f"{_table(header, rows)}\n{errors}"
    )


def _handwriting_section(r: HandwritingResult) -> str:
    models = list(dict.fromkeys(row.model for row in r.rows))
    top1 = {(row.model, row.polarity): row for row in r.rows}
    polarities = list(dict.fromkeys(row.polarity for row in r.rows))
    rows = [(m, *(f"{_num(top1[m, p].top1, 1)}% of {top1[m, p].count}" for p in polarities)) for m in models]
    error = f"\n\nNot measured: {r.error}" if r.error else ""
    return (
        "## 8. Handwriting\n\n"
        "Each digit model's top-1 on digits drawn as people draw them (`export/handwriting.py`: pen strokes with "
        "a hand's wobble, slant, size, position and pen width), white on black as on the page's canvas and dark "
        "ink on paper as in a photo of a note, each sent to `/predict` as a PNG. A check set: nothing trains on it."
        f"\n\n{_table(('model', *polarities), rows)}{error}"
    )


def _int8_section(r: Int8Result) -> str:
    rows = [
        (
            row.model,
            "x".join(map(str, row.input_shape)) or "-",
            _num(row.fp32_b1_ms, 3),
            _num(row.int8_b1_ms, 3),
            f"**{_num(row.speedup_b1)}x**",
            _num(row.fp32_batch_ips, 0),
            _num(row.int8_batch_ips, 0),
            f"{_num(row.speedup_batch)}x",
            _num(row.fp32_top1),
            _num(row.int8_top1),
            _num(row.top1_change),
            row.error or "",
        )
        for row in r.rows
    ]
    table = _table(
        (
            "network",
            "input",
            "fp32 b1 ms",
            "int8 b1 ms",
            "speed-up b1",
            f"fp32 b{r.batch} img/s",
            f"int8 b{r.batch} img/s",
            f"speed-up b{r.batch}",
            "fp32 top-1 %",
            "int8 top-1 %",
            "change",
            "note",
        ),
        rows,
    )
    return (
        "## 4. INT8 vs float32\n\n"
        "The published variants of the same version, bare sessions with the server's options, timed interleaved. "
        "Accuracy: test top-1 through ONNX Runtime as the build measured it (INT8 calibrated on training images).\n\n"
        f"{table}\n"
    )


def _startup_section(r: StartupResult) -> str:
    if r.error:
        return f"## 5. Start-up\n\nnot measured: {r.error}\n"
    runs = ", ".join(f"{s:.2f}" for s in r.ready_s)
    return (
        "## 5. Start-up (warm repository)\n\n"
        f"`python -m service` to every model ready ({r.models} models, {r.sessions} ONNX Runtime sessions loaded and "
        f"warmed up): median **{_num(r.ready_median_s)} s** (runs: {runs} s); `/healthz` answered after a median "
        f"{_num(r.live_median_s)} s.\n"
    )


# ------------------------------------------------------------------------------------------ plots


def _save(fig: Any, path: Path) -> bool:
    """Write ``fig`` as a PNG and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _plot_runtime(r: RuntimeResult, path: Path) -> bool:
    import matplotlib.pyplot as plt

    threads = sorted({row.threads for row in r.rows})
    models = list(dict.fromkeys(row.model for row in r.rows))
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / max(1, len(threads))
    for i, t in enumerate(threads):
        values = [
            next((row.speedup_b1 for row in r.rows if row.model == m and row.threads == t), math.nan) for m in models
        ]
        ax.bar([j + i * width for j in range(len(models))], values, width, label=f"{t} thread(s)")
    ax.axhline(1.4, color="red", linestyle="--", label="target 1.4x")
    ax.set_xticks([j + width * (len(threads) - 1) / 2 for j in range(len(models))], models, rotation=35, ha="right")
    ax.set_ylabel("ONNX Runtime / PyTorch speed, batch 1")
    ax.legend()
    return _save(fig, path)


def _plot_batching(r: BatchingResult, path: Path) -> bool:
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(lv.model for lv in r.levels))
    if not models:
        return False
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 3.8), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        for payload, color in zip(
            dict.fromkeys(lv.payload for lv in r.levels), ("tab:blue", "tab:orange"), strict=False
        ):
            levels = [lv for lv in r.levels if lv.model == model and lv.payload == payload]
            xs = [lv.concurrency for lv in levels]
            for mode, style, name in (
                ("on", "o-", "new defaults"),
                ("off", "s--", "batching off"),
                ("old", "^:", "old"),
            ):
                ax.plot(
                    xs,
                    [lv.modes[mode].throughput if mode in lv.modes else math.nan for lv in levels],
                    style,
                    color=color,
                    label=f"{payload}, {name}",
                )
        levels = [lv for lv in r.levels if lv.model == model and lv.payload == r.levels[0].payload]
        ax.plot([lv.concurrency for lv in levels], [lv.ceiling for lv in levels], "k:", label="ceiling (bare batches)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")  # the ceiling of a tiny network is orders of magnitude above HTTP's rate
        ax.set_xticks(
            sorted({lv.concurrency for lv in r.levels}), [str(c) for c in sorted({lv.concurrency for lv in r.levels})]
        )
        ax.set_title(model)
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel("requests per second")
        ax.legend()
    return _save(fig, path)


def _plot_workers(r: WorkersResult, path: Path) -> bool:
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(row.model for row in r.rows))
    if not models:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for model in models:
        rows = sorted((row for row in r.rows if row.model == model), key=lambda row: row.workers)
        label = f"{model}, concurrency {rows[0].concurrency}"
        ax.plot([row.workers for row in rows], [row.result.throughput for row in rows], "o-", label=label)
    counts = sorted({row.workers for row in r.rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(counts, [str(c) for c in counts])
    ax.set_yscale("log")
    ax.set_xlabel("worker processes")
    ax.set_ylabel("requests per second")
    ax.legend()
    return _save(fig, path)


def _plots(results: Results, img: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    img.mkdir(parents=True, exist_ok=True)
    made: dict[str, str] = {}
    relative = img.relative_to(results.config.out.parent) if img.is_relative_to(results.config.out.parent) else img
    if results.runtime and results.runtime.rows and _plot_runtime(results.runtime, img / "runtime.png"):
        made["runtime"] = f"{relative.as_posix()}/runtime.png"
    if results.batching and _plot_batching(results.batching, img / "batching.png"):
        made["batching"] = f"{relative.as_posix()}/batching.png"
    if results.workers and _plot_workers(results.workers, img / "workers.png"):
        made["workers"] = f"{relative.as_posix()}/workers.png"
    results.plots = [img / Path(p).name for p in made.values()]
    return made


# ------------------------------------------------------------------------------------------ page


def write_report(results: Results) -> Path:
    """Write the Markdown page, its plots and ``benchmarks.json``; returns the page's path."""
    config = results.config
    out = config.out
    out.parent.mkdir(parents=True, exist_ok=True)
    plots = _plots(results, config.images)
    sections = [
        "# Benchmarks\n",
        "Written by `make bench` (`python -m bench`); every ratio below is of two configurations measured side by "
        "side in this one run, their repetitions interleaved. Reproduce with:\n\n"
        f"```bash\n{results.command}\n```\n\n"
        f"Repository: `{results.repository}`; the run took {results.seconds / 60:.1f} minutes.\n",
        _machine_section(results.machine, config),
        _targets_section(results.targets(), results.information()),
    ]
    if results.runtime:
        sections.append(_runtime_section(results.runtime, plots.get("runtime")))
    if results.overhead:
        sections.append(_overhead_section(results.overhead))
    if results.batching:
        sections.append(_batching_section(results.batching, plots.get("batching")))
    if results.int8:
        sections.append(_int8_section(results.int8))
    if results.startup:
        sections.append(_startup_section(results.startup))
    if results.workers:
        sections.append(_workers_section(results.workers, plots.get("workers")))
    if results.protocols:
        sections.append(_protocols_section(results.protocols))
    if results.handwriting:
        sections.append(_handwriting_section(results.handwriting))
    out.write_text("\n".join(sections))
    json_out = config.json_out or config.images / "benchmarks.json"
    json_out.write_text(json.dumps(results.to_dict(), indent=1, default=_json_default) + "\n")
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"cannot encode {type(value).__name__}")
