"""``python -m training COMMAND ...``: train, fine-tune, train the default set, compare transfer modes.

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

__all__ = ["COMMANDS", "Command", "add_output", "build_parser", "main", "run"]

# A command: (subparser builder, handler returning the exit code).
Command = tuple[Callable[[argparse._SubParsersAction], argparse.ArgumentParser], Callable[[argparse.Namespace], int]]


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
    p.add_argument(
        "--last",
        choices=("keep", "delete", "none"),
        default="keep",
        help="OUT/last.pt (for --resume), written every epoch: keep it (default), delete it when done, "
        "or never write it",
    )
    add_output(p)


def add_output(p: argparse.ArgumentParser) -> None:
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
    from .distributed import DistEnv

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
    from .train import TrainConfig, train

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
    p.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=None,
        help="our checkpoint.pt or a torchvision .pth state_dict (not needed for --mode scratch)",
    )
    p.add_argument("--data", required=True, help="target data: digits:CLASSES[:K] or a class-per-folder PATH")
    p.add_argument(
        "--mode",
        required=True,
        choices=("feature-extract", "finetune", "scratch"),
        help="feature-extract: train the new head only; finetune: all layers, backbone at a lower "
        "learning rate; scratch: no pretrained weights (the baseline)",
    )
    return p


def cmd_finetune(args: argparse.Namespace) -> int:
    from .train import FinetuneConfig, finetune

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
    add_output(p)
    return p


def cmd_train_all(args: argparse.Namespace) -> int:
    from .recipes import DEFAULT_SET
    from .train import train_default_set

    names = [n.strip() for n in args.models.split(",")] if args.models else list(DEFAULT_SET)
    results = train_default_set(
        args.out,
        names,
        data=args.data,
        seed=args.seed,
        quiet=args.quiet,
        epochs=args.epochs,
        limit_train=args.limit_train,
    )
    for name, result in results.items():
        if result is None:
            print(f"{name}: not registered, skipped")
        else:
            _report(result)
    return 0 if all(r is not None for r in results.values()) else 1


def _add_transfer_experiment(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "transfer-experiment",
        help="feature-extract vs finetune vs scratch on a small target task (docs/transfer-learning.md)",
        description="Train MODEL on digits 0-4, then learn digits 5-9 from K images per class in the three "
        "fine-tuning modes, several seeds each, and write the comparison page.",
    )
    p.add_argument("--model", default="resnet18", help="network (default: resnet18)")
    p.add_argument(
        "--per-class", default="5,10,25", help="labelled target images per class, comma list (default: 5,10,25)"
    )
    p.add_argument("--seeds", type=int, default=3, help="runs per mode (default: 3)")
    p.add_argument("--out", type=Path, default=Path("runs/transfer"), help="checkpoints (default: runs/transfer)")
    p.add_argument("--page", type=Path, default=Path("docs/transfer-learning.md"), help="the page to write")
    add_output(p)
    return p


def cmd_transfer_experiment(args: argparse.Namespace) -> int:
    from .transfer import TransferExperiment, run_experiment, write_page

    per_class = tuple(int(k) for k in args.per_class.split(","))
    experiment = TransferExperiment(model=args.model, per_class=per_class, seeds=tuple(range(args.seeds)), out=args.out)
    result = run_experiment(experiment, quiet=args.quiet)
    command = (
        f"python -m training transfer-experiment --model {args.model} --per-class {args.per_class} --seeds {args.seeds}"
    )
    page = write_page(result, args.page, command)
    for k, modes in result.runs.items():
        for runs in modes.values():
            print(f"{k} per class, {runs.mode}: target test top-1 {runs.mean:.1f}% ± {runs.spread:.1f}")
    print(f"wrote {page}")
    return 0


# Subcommand name -> (parser builder, handler).
COMMANDS: dict[str, Command] = {
    "train": (_add_train, cmd_train),
    "finetune": (_add_finetune, cmd_finetune),
    "train-all": (_add_train_all, cmd_train_all),
    "transfer-experiment": (_add_transfer_experiment, cmd_transfer_experiment),
}


def build_parser(prog: str = "python -m training", commands: dict[str, Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=sys.modules[__name__].__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, handler in commands.values():
        add(sub).set_defaults(handler=handler)
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    rank = int(os.environ.get("RANK", "0"))
    level = logging.DEBUG if args.verbose else logging.WARNING if (args.quiet or rank != 0) else logging.INFO
    fmt = "%(asctime)s %(name)s %(levelname)s: %(message)s" if args.verbose else "%(message)s"
    logging.basicConfig(level=level, stream=sys.stderr, format=fmt)


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse ``argv`` with ``parser`` and run the chosen command; a user's error is one ``error:`` line, exit 2."""
    args = parser.parse_args(argv)
    _configure_logging(args)
    import models

    try:
        return args.handler(args)
    except (ValueError, models.UnknownModelError, FileNotFoundError, FloatingPointError) as err:
        if args.verbose:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv)
