"""``python -m export COMMAND ...``: train, fine-tune, build, import, verify the zoo.

Each command is a subparser built by an ``_add_<command>`` function and dispatched to a
``cmd_<command>(args) -> exit code`` function; adding a command is adding those two and one
line in :data:`COMMANDS`. Flags that are not given stay ``None`` and leave the network's
recipe alone. Errors the user can fix (bad data, unknown network, weights that do not fit)
end with one ``error:`` line and exit status 2; ``--verbose`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["COMMANDS", "build_parser", "main"]


def _add_common(p: argparse.ArgumentParser) -> None:
    """Flags every training command takes; recipe fields default to ``None`` (= the recipe's)."""
    p.add_argument("model", help="network name (python -c 'import models; print(models.list_models())')")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: runs/MODEL[-MODE])")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the network's recipe)")
    p.add_argument("--image-size", type=int, default=None, help="training resolution (default: the recipe's)")
    p.add_argument("--batch-size", type=int, default=None, help="global batch size (default: the recipe's)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the recipe's)")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience in epochs")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--limit-train", type=int, default=None, metavar="N", help="train on N images only (quick runs)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when present)")
    p.add_argument("--workers", type=int, default=None, help="data-loading processes for image folders")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: cores / processes)")
    p.add_argument("--last", choices=("keep", "delete", "none"), default="keep",
                   help="OUT/last.pt (for --resume), written every epoch: keep it (default), delete it when done, "
                   "or never write it")
    _add_output(p)


def _add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings only")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")


def _common_config(args: argparse.Namespace) -> dict:
    return {
        "model": args.model,
        "data": args.data,
        "out": args.out,
        "epochs": args.epochs,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "patience": args.patience,
        "seed": args.seed,
        "resume": args.resume,
        "quiet": args.quiet,
        "limit_train": args.limit_train,
        "device": args.device,
        "workers": args.workers,
        "threads": args.threads,
        "last": args.last,
    }


def _report(result) -> None:
    from export.train import DistEnv

    if not DistEnv.from_env().main or "test_top1" not in result.metrics:
        return
    m = result.metrics
    print(
        f"{result.model}: test top-1 {m['test_top1']:.2f}% top-5 {m['test_top5']:.2f}% "
        f"({m['epochs']} epochs, {m['seconds']:.1f}s) -> {result.checkpoint}"
    )


# ----------------------------------------------------------------------------------- train


def _add_train(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a network from scratch", description="Train a network from scratch.")
    _add_common(p)
    p.add_argument("--data", default="digits", help="digits, digits:CLASSES[:K] or a class-per-folder PATH")
    return p


def cmd_train(args: argparse.Namespace) -> int:
    from export.train import TrainConfig, train

    _report(train(TrainConfig(**_common_config(args))))
    return 0


# -------------------------------------------------------------------------------- finetune


def _add_finetune(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "finetune",
        help="adapt a pretrained network to new classes",
        description="Replace the head of a pretrained network and train it on the target data.",
    )
    _add_common(p)
    p.add_argument("--from", dest="source", type=Path, default=None,
                   help="our checkpoint.pt or a torchvision .pth state_dict (not needed for --mode scratch)")
    p.add_argument("--data", required=True, help="target data: digits:CLASSES[:K] or a class-per-folder PATH")
    p.add_argument("--mode", required=True, choices=("feature-extract", "finetune", "scratch"),
                   help="feature-extract: train the new head only; finetune: all layers, backbone at a lower "
                   "learning rate; scratch: no pretrained weights (the baseline)")
    return p


def cmd_finetune(args: argparse.Namespace) -> int:
    from export.train import FinetuneConfig, finetune

    _report(finetune(FinetuneConfig(**_common_config(args), source=args.source, mode=args.mode)))
    return 0


# ------------------------------------------------------------------------------- train-all


def _add_train_all(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train-all",
        help="train the default set one after the other",
        description="Train every network of the default set (or --models) into OUT/<model>.",
    )
    p.add_argument("--out", type=Path, default=Path("runs"), help="output root (default: runs)")
    p.add_argument("--models", default=None, help="comma-separated names (default: the default set)")
    p.add_argument("--data", default="digits", help="data spec (default: digits)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="override every recipe's epochs")
    p.add_argument("--limit-train", type=int, default=None, metavar="N")
    _add_output(p)
    return p


def cmd_train_all(args: argparse.Namespace) -> int:
    from export.recipes import DEFAULT_SET
    from export.train import train_default_set

    names = [n.strip() for n in args.models.split(",")] if args.models else list(DEFAULT_SET)
    results = train_default_set(args.out, names, data=args.data, seed=args.seed, quiet=args.quiet,
                                epochs=args.epochs, limit_train=args.limit_train)
    for name, result in results.items():
        if result is None:
            print(f"{name}: not registered, skipped")
        else:
            _report(result)
    return 0 if all(r is not None for r in results.values()) else 1


# ------------------------------------------------------------------- build, import, verify


def _add_build(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "build",
        help="train (or reuse), export, verify and publish the default set",
        description="Train or reuse each network's checkpoint, export it to ONNX with its INT8 and float16 "
        "variants, verify them and publish a new version; a model whose checkpoint and export options are "
        "unchanged is left alone.",
    )
    p.add_argument("--models", default=None, help="comma-separated names (default: the default set)")
    p.add_argument("--repository", type=Path, default=None, help="model repository (default: model_repository)")
    p.add_argument("--checkpoints", type=Path, default=None, help="checkpoint root (default: runs)")
    p.add_argument("--quick", action="store_true", default=None,
                   help="a moment of training per network, for tests; the cards say so")
    p.add_argument("--data", default=None, help="data spec to train on (default: digits)")
    p.add_argument("--force", action="store_true", default=None, help="publish a new version even if nothing changed")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch and ONNX Runtime")
    _add_output(p)
    return p


def cmd_build(args: argparse.Namespace) -> int:
    from export.build import BuildOptions, build, replace_options, summary_line

    models_ = [n.strip() for n in args.models.split(",") if n.strip()] if args.models else None
    options = replace_options(BuildOptions(), models=models_, repository=args.repository, checkpoints=args.checkpoints,
                              quick=args.quick, data=args.data, force=args.force, threads=args.threads,
                              progress=False if args.quiet or not sys.stderr.isatty() else None)
    results = build(options)
    for r in results:
        detail = f" version {r.version}" if r.version else ""
        print(f"{r.name}: {r.status}{detail} ({r.seconds:.1f}s){': ' + r.message if r.status == 'failed' else ''}")
    print(f"{options.repository}: {summary_line(results)}")
    return 0 if all(r.ok for r in results) else 1


def _add_import_torchvision(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "import-torchvision",
        help="publish a network with torchvision-format pretrained weights",
        description="Build NAME, load torchvision-format weights strictly and publish it with ImageNet "
        "preprocessing (resize 256, centre crop 224, ImageNet mean/std).",
    )
    p.add_argument("model", metavar="NAME", help="zoo network whose layout matches the file (e.g. resnet18)")
    p.add_argument("--weights", type=Path, required=True, help="torchvision .pth state_dict")
    p.add_argument("--labels", type=Path, default=None, help="class names, one per line (default: indices)")
    p.add_argument("--name", default=None, help="served model name (default: NAME)")
    p.add_argument("--repository", type=Path, default=None, help="model repository (default: model_repository)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for ONNX Runtime")
    _add_output(p)
    return p


def cmd_import_torchvision(args: argparse.Namespace) -> int:
    from export.build import BuildOptions, import_torchvision, replace_options

    from export.onnx_export import ExportError
    from export.repository import RepositoryError

    options = replace_options(BuildOptions(), repository=args.repository, threads=args.threads)
    try:
        version = import_torchvision(args.model, args.weights, labels=args.labels, name=args.name, options=options)
    except (ExportError, RepositoryError) as err:
        if args.verbose:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.name or args.model}: published version {version} in {options.repository}")
    return 0


def _add_verify(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "verify",
        help="re-check a model repository's files, hashes and cards",
        description="Re-check every published model: card schema and digests, file sizes and sha256, "
        "ONNX validity and metadata, config.pbtxt. Exits 1 on any mismatch.",
    )
    p.add_argument("--repository", type=Path, default=Path("model_repository"), help="default: model_repository")
    p.add_argument("--models", default=None, help="comma-separated names (default: every published model)")
    _add_output(p)
    return p


def cmd_verify(args: argparse.Namespace) -> int:
    from export.verify import verify_repository

    names = [n.strip() for n in args.models.split(",") if n.strip()] if args.models else None
    problems = verify_repository(args.repository, names)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        print(f"{args.repository}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.repository}: ok")
    return 0


def _add_report(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "report",
        help="write docs/model-zoo.md from the published model cards",
        description="One row per published model: parameters, MACs, test accuracy, training time, INT8 accuracy "
        "and speed, the command that reproduces it.",
    )
    p.add_argument("--repository", type=Path, default=Path("model_repository"), help="default: model_repository")
    p.add_argument("--out", type=Path, default=Path("docs/model-zoo.md"), help="default: docs/model-zoo.md")
    _add_output(p)
    return p


def cmd_report(args: argparse.Namespace) -> int:
    from export.repository import Repository
    from export.zoo_report import write_zoo_page

    if not Repository(args.repository).names():
        print(f"error: {args.repository} has no published model; run python -m export build first", file=sys.stderr)
        return 2
    print(f"wrote {write_zoo_page(args.repository, args.out)}")
    return 0


def _add_transfer_experiment(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "transfer-experiment",
        help="feature-extract vs finetune vs scratch on a small target task (docs/transfer-learning.md)",
        description="Train MODEL on digits 0-4, then learn digits 5-9 from K images per class in the three "
        "fine-tuning modes, several seeds each, and write the comparison page.",
    )
    p.add_argument("--model", default="resnet18", help="network (default: resnet18)")
    p.add_argument("--per-class", default="5,10,25", help="labelled target images per class, comma list (default: 5,10,25)")
    p.add_argument("--seeds", type=int, default=3, help="runs per mode (default: 3)")
    p.add_argument("--out", type=Path, default=Path("runs/transfer"), help="checkpoints (default: runs/transfer)")
    p.add_argument("--page", type=Path, default=Path("docs/transfer-learning.md"), help="the page to write")
    _add_output(p)
    return p


def cmd_transfer_experiment(args: argparse.Namespace) -> int:
    from export.transfer import TransferExperiment, run_experiment, write_page

    per_class = tuple(int(k) for k in args.per_class.split(","))
    experiment = TransferExperiment(model=args.model, per_class=per_class, seeds=tuple(range(args.seeds)), out=args.out)
    result = run_experiment(experiment, quiet=args.quiet)
    command = f"python -m export transfer-experiment --model {args.model} --per-class {args.per_class} --seeds {args.seeds}"
    page = write_page(result, args.page, command)
    for k, modes in result.runs.items():
        for runs in modes.values():
            print(f"{k} per class, {runs.mode}: target test top-1 {runs.mean:.1f}% ± {runs.spread:.1f}")
    print(f"wrote {page}")
    return 0


# Subcommand name -> (parser builder, handler).
COMMANDS: dict[str, tuple[Callable, Callable[[argparse.Namespace], int]]] = {
    "train": (_add_train, cmd_train),
    "finetune": (_add_finetune, cmd_finetune),
    "train-all": (_add_train_all, cmd_train_all),
    "build": (_add_build, cmd_build),
    "import-torchvision": (_add_import_torchvision, cmd_import_torchvision),
    "verify": (_add_verify, cmd_verify),
    "report": (_add_report, cmd_report),
    "transfer-experiment": (_add_transfer_experiment, cmd_transfer_experiment),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add, handler) in COMMANDS.items():
        add(sub).set_defaults(handler=handler)
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    rank = int(os.environ.get("RANK", "0"))
    level = logging.DEBUG if args.verbose else logging.WARNING if (args.quiet or rank != 0) else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s" if not args.verbose else
                        "%(asctime)s %(name)s %(levelname)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args)
    import models

    try:
        return args.handler(args)
    except (ValueError, models.UnknownModelError, FileNotFoundError, FloatingPointError) as err:
        if args.verbose:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
