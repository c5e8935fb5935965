"""``python -m bench [--quick] [--only runtime,overhead,...] [--repository DIR] [--out FILE]``.

Without ``--repository`` the full run measures ``model_repository`` (built first by
``python -m export build`` when it is missing) and ``--quick`` builds a small quick repository
of its own under the work folder. Exits 1 when a benchmark could not run at all.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import batching, handwriting, int8, overhead, protocols, runtime, startup, workers
from .config import BENCHMARKS, BenchConfig
from .machine import describe_machine
from .report import Results, write_report

log = logging.getLogger("bench")


def _names(text: str | None) -> tuple[str, ...] | None:
    return tuple(n.strip() for n in text.split(",") if n.strip()) if text else None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0].strip("`"))
    p.add_argument("--quick", action="store_true", help="the tiny preset: seconds, every code path, no real numbers")
    p.add_argument("--only", default=None, help=f"comma-separated benchmarks among {', '.join(BENCHMARKS)}")
    p.add_argument("--repository", type=Path, default=None, help="model repository to measure (default: see above)")
    p.add_argument("--out", type=Path, default=None, help="Markdown report (default: docs/benchmarks.md)")
    p.add_argument("--work-dir", type=Path, default=None, help="exports, logs and profiles (default: build/bench)")
    p.add_argument("--runtime-models", default=None, help="networks of benchmark 1 (default: the default set)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _config(args: argparse.Namespace) -> BenchConfig:
    base = BenchConfig.tiny() if args.quick else BenchConfig.full()
    only = _names(args.only)
    if only is not None and set(only) - set(BENCHMARKS):
        raise SystemExit(
            f"error: --only takes {', '.join(BENCHMARKS)}; got {', '.join(sorted(set(only) - set(BENCHMARKS)))}"
        )
    return base.replace(
        benchmarks=only,
        repository=args.repository,
        out=args.out,
        work_dir=args.work_dir,
        runtime_models=_names(args.runtime_models),
    )


def ensure_repository(config: BenchConfig) -> Path:
    """The repository to measure: the one given, else ``model_repository`` or a quick one, built if missing."""
    if config.repository is not None:
        if not config.repository.is_dir():
            raise SystemExit(
                f"error: {config.repository} is not a model repository (build one: python -m export build)"
            )
        return config.repository
    from export.build import BuildOptions, build

    models = sorted(
        {
            *config.overhead_models,
            *config.batching_models,
            *config.int8_models,
            *(m for m, _ in config.workers_loads),
            *(m for m, _ in config.protocol_loads),
        }
    )
    if config.quick:
        options = BuildOptions(
            models=models,
            repository=config.work_dir / "model_repository",
            quick=True,
            checkpoints=config.work_dir / "checkpoints",
            progress=False,
        )
    else:
        options = BuildOptions(progress=sys.stderr.isatty())
        if options.repository.is_dir():
            return options.repository
    log.info("building %s (%s)", options.repository, ", ".join(options.models or ["the default set"]))
    failed = [f"{r.name}: {r.message}" for r in build(options) if not r.ok]
    if failed:
        raise SystemExit("error: the repository did not build: " + "; ".join(failed))
    return options.repository


def run(config: BenchConfig, command: str) -> Results:
    repository = ensure_repository(config)
    logs = config.work_dir / "logs"
    results = Results(config, describe_machine(), command, repository)
    start = time.perf_counter()
    steps = {
        "runtime": lambda: setattr(results, "runtime", runtime.run(config)),
        "overhead": lambda: setattr(results, "overhead", overhead.run(config, repository, logs)),
        "batching": lambda: setattr(results, "batching", batching.run(config, repository, logs)),
        "int8": lambda: setattr(results, "int8", int8.run(config, repository)),
        "startup": lambda: setattr(results, "startup", startup.run(config, repository, logs)),
        "workers": lambda: setattr(results, "workers", workers.run(config, repository, logs)),
        "protocols": lambda: setattr(results, "protocols", protocols.run(config, repository, logs)),
        "handwriting": lambda: setattr(results, "handwriting", handwriting.run(config, repository, logs)),
    }
    for name in config.benchmarks:
        log.info("== %s", name)
        steps[name]()
    results.seconds = time.perf_counter() - start
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr
    )
    for noisy in ("torch.onnx", "onnxscript", "onnx_ir", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = _config(args)
    command = "python -m bench " + shlex.join(list(argv if argv is not None else sys.argv[1:]))
    results = run(config, command.strip())
    page = write_report(results)
    targets = results.targets()
    print(f"{page}: {sum(t.met for t in targets)} of {len(targets)} targets met ({results.seconds / 60:.1f} min)")
    for t in targets:
        if not t.met:
            print(f"  missed: {t.name}: {t.value:.3g}{t.unit} (bound {t.comparison} {t.bound:g}{t.unit})")
    failed = [
        n
        for n in ("overhead", "startup", "handwriting")
        if getattr(results, n) is not None and getattr(results, n).error
    ]
    failed += [f"batching {m}" for m in (results.batching.errors if results.batching else {})]
    failed += [f"workers {m}" for m in (results.workers.errors if results.workers else {})]
    failed += [f"protocols {m}" for m in (results.protocols.errors if results.protocols else {})]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
