"""``python -m models list``, ``python -m models summary NAME`` and ``python -m models catalog --out DIR``."""

from __future__ import annotations

import argparse
import ast
import json
import sys

import torch

from . import InputSizeError, UnknownModelError, create_model, get_model_info, list_models
from .catalog import write_catalog_folder
from .summary import summarize


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CxHxW such as 3x224x224, got {text!r}") from None
    if len(dims) != 3 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"expected CxHxW such as 3x224x224, got {text!r}")
    return dims


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m models", description="The cnnserve model zoo.")
    sub = parser.add_subparsers(dest="command", required=True)
    lst = sub.add_parser("list", help="list the networks of the zoo")
    lst.add_argument("pattern", nargs="*", help="wildcards such as 'resnet*'")
    lst.add_argument("--format", choices=("text", "json"), default="text")
    summ = sub.add_parser("summary", help="per-layer shapes, parameters and multiply-adds")
    summ.add_argument("name")
    summ.add_argument("--input", type=_shape, help="CxHxW (default: the network's canonical input)")
    summ.add_argument("--classes", type=int, help="number of classes (default: the network's own)")
    summ.add_argument("--depth", type=int, help="rows for modules down to this depth (default: every leaf)")
    summ.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    summ.add_argument(
        "-o",
        "--option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="builder option, e.g. -o width_mult=0.5 (repeatable)",
    )
    catalog = sub.add_parser(
        "catalog", help="write the architecture catalog: every network's canonical summary as data (the service's /zoo)"
    )
    catalog.add_argument("--out", required=True, help="the folder to write (the service's: service/catalog)")
    return parser


def _catalog(args: argparse.Namespace) -> str:
    written = write_catalog_folder(args.out)
    size = sum(p.stat().st_size for p in written)
    return f"{args.out}: {len(written) - 1} architectures and the index, {size / 2**20:.1f} MB"


def _list(args: argparse.Namespace) -> str:
    infos = [get_model_info(n) for n in list_models(args.pattern or None)]
    if args.format == "json":
        return json.dumps([i.as_dict() for i in infos], indent=2)
    width = max((len(i.name) for i in infos), default=4)
    lines = [f"{'name':<{width}}  {'family':<12} {'input':<11} {'classes':>7}  paper"]
    for i in infos:
        size = "x".join(map(str, i.input_size))
        authors = i.paper.authors.split(",")
        who = authors[0] + (" et al." if len(authors) > 2 else "".join("," + a for a in authors[1:]))
        lines.append(f"{i.name:<{width}}  {i.family:<12} {size:<11} {i.num_classes:>7}  {who} ({i.paper.year})")
    return "\n".join(lines)


def _summary(args: argparse.Namespace) -> str:
    info = get_model_info(args.name)
    channels = args.input[0] if args.input else None
    # The meta device gives shapes and counts without allocating a single weight.
    with torch.device("meta"):
        model = create_model(args.name, num_classes=args.classes, in_channels=channels, **dict(args.option))
    summary = summarize(model, args.input or model.info.input_size, depth=args.depth, name=info.name)
    return {"text": summary.to_text, "json": summary.to_json, "markdown": summary.to_markdown}[args.format]()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        print({"list": _list, "summary": _summary, "catalog": _catalog}[args.command](args))
    except (UnknownModelError, InputSizeError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
