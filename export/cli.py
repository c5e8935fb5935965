"""``python -m export COMMAND ...``: build, import, verify and report the model repository.

Each command is a subparser built by an ``_add_<command>`` function and dispatched to a
``cmd_<command>(args) -> exit code`` function, as in :mod:`training.cli`, whose plumbing this
reuses. ``train``, ``finetune``, ``train-all`` and ``transfer-experiment`` moved to
``python -m training``; here they still work, with a deprecation note.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from training.cli import COMMANDS as TRAINING_COMMANDS
from training.cli import Command, add_output, run
from training.cli import build_parser as _build_parser

__all__ = ["COMMANDS", "build_parser", "main"]


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
    p.add_argument(
        "--quick",
        action="store_true",
        default=None,
        help="a moment of training per network, for tests; the cards say so",
    )
    p.add_argument("--data", default=None, help="data spec to train on (default: digits)")
    p.add_argument("--force", action="store_true", default=None, help="publish a new version even if nothing changed")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch and ONNX Runtime")
    add_output(p)
    return p


def cmd_build(args: argparse.Namespace) -> int:
    from export.build import build, summary_line
    from export.options import BuildOptions, replace_options

    models_ = [n.strip() for n in args.models.split(",") if n.strip()] if args.models else None
    options = replace_options(
        BuildOptions(),
        models=models_,
        repository=args.repository,
        checkpoints=args.checkpoints,
        quick=args.quick,
        data=args.data,
        force=args.force,
        threads=args.threads,
        progress=False if args.quiet or not sys.stderr.isatty() else None,
    )
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
    add_output(p)
    return p


def cmd_import_torchvision(args: argparse.Namespace) -> int:
    from export.onnx_export import ExportError
    from export.options import BuildOptions, replace_options
    from export.torchvision_import import import_torchvision
    from repository import RepositoryError

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


def _add_import_onnx(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "import-onnx",
        help="publish an image classifier exported to ONNX elsewhere",
        description="Check FILE (one image input with a dynamic batch, one class output, ops ONNX Runtime runs), "
        "read its per-layer summary from the graph and publish it as the next version of NAME.",
    )
    p.add_argument("file", type=Path, metavar="FILE", help="the .onnx file (external data files beside it)")
    p.add_argument("--name", required=True, help="served model name (lower case, digits, . _ -)")
    p.add_argument("--labels", required=True, help="class names, one per line, or their count N")
    p.add_argument("--input", default=None, metavar="CxHxW", help="input size where the file leaves it open")
    p.add_argument(
        "--preprocessing",
        default="imagenet",
        help="imagenet (resize 256/224 of the size, ImageNet mean/std), none (scaled to [0, 1] only), or "
        "mean=a/b/c,std=a/b/c,size=S,resize=R (default: imagenet)",
    )
    p.add_argument("--repository", type=Path, default=Path("model_repository"), help="default: model_repository")
    p.add_argument("--max-bytes", type=int, default=None, help="largest file accepted (default: 2 GiB - 1)")
    p.add_argument(
        "--eval",
        type=Path,
        default=None,
        metavar="IMAGE_FOLDER",
        help="labelled images (a folder per class, named as the labels): float32's top-1, and INT8 and float16 "
        "variants published within 1 point of it",
    )
    add_output(p)
    return p


def cmd_import_onnx(args: argparse.Namespace) -> int:
    from export.onnx_import import MAX_BYTES, OnnxImportError, import_onnx, read_labels
    from repository import NAME_PATTERN, RepositoryError

    try:
        if not NAME_PATTERN.match(args.name):
            raise OnnxImportError(f"--name {args.name!r}: lower case letters, digits, '.', '_' and '-' (64 at most)")
        shape = [int(d) for d in args.input.lower().split("x")] if args.input else None
        if shape is not None and len(shape) != 3:
            raise OnnxImportError(f"--input {args.input!r}: C x H x W, e.g. 3x224x224")
        version = import_onnx(
            args.file,
            name=args.name,
            labels=read_labels(args.labels),
            repository=args.repository,
            input_shape=shape,
            preprocess=args.preprocessing,
            max_bytes=args.max_bytes or MAX_BYTES,
            evaluate=args.eval,
        )
    except (OnnxImportError, RepositoryError, ValueError) as err:
        if args.verbose:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.name}: published version {version} in {args.repository}")
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
    add_output(p)
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
        help="write docs/published-models.md from the published model cards",
        description="One row per published model: parameters, MACs, test accuracy, training time, INT8 accuracy "
        "and speed, the command that reproduces it.",
    )
    p.add_argument("--repository", type=Path, default=Path("model_repository"), help="default: model_repository")
    p.add_argument(
        "--out", type=Path, default=Path("docs/published-models.md"), help="default: docs/published-models.md"
    )
    add_output(p)
    return p


def cmd_report(args: argparse.Namespace) -> int:
    from export.report import write_published_page
    from repository import Repository

    if not Repository(args.repository).names():
        print(f"error: {args.repository} has no published model; run python -m export build first", file=sys.stderr)
        return 2
    print(f"wrote {write_published_page(args.repository, args.out)}")
    return 0


def _deprecated(name: str, command: Command) -> Command:
    """``command`` of ``python -m training``, reachable under its old name with a note on stderr."""
    add, handler = command

    def add_alias(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
        p = add(sub)
        p.description = f"Deprecated: use `python -m training {name}`. " + (p.description or "")
        return p

    def forward(args: argparse.Namespace) -> int:
        print(f"note: `python -m export {name}` is deprecated; use `python -m training {name}`", file=sys.stderr)
        return handler(args)

    return add_alias, forward


# Subcommand name -> (parser builder, handler).
COMMANDS: dict[str, Command] = {
    "build": (_add_build, cmd_build),
    "import-torchvision": (_add_import_torchvision, cmd_import_torchvision),
    "import-onnx": (_add_import_onnx, cmd_import_onnx),
    "verify": (_add_verify, cmd_verify),
    "report": (_add_report, cmd_report),
    **{name: _deprecated(name, command) for name, command in TRAINING_COMMANDS.items()},
}


def build_parser() -> argparse.ArgumentParser:
    parser = _build_parser("python -m export", COMMANDS)
    parser.description = __doc__.split("\n")[0]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv)
