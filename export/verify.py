"""``python -m export verify``: does the repository on disk still match its cards?

For every model with a card:

* the card parses and validates (``export.repository``), and its digests match (an edited card);
* every version in the card has its folder, and every published file its size and sha256
  (a truncated or replaced file); no version folder exists that the card does not list;
* every published ONNX file passes ``onnx.checker`` (full check), its metadata names this
  model, version and precision (and, for the latest version, the card's labels and input
  spec), and its inputs and outputs are the card's;
* ``config.pbtxt`` is what the card renders to;
* a version's layer record (``export.layers``) names tensors and weights its file has.

Folders without a card are reported as being built (a build writes the card last).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from repository import CARD_FILE, TRITON_CONFIG_FILE, ModelCard, Repository
from repository.triton import render_config

__all__ = ["verify_model", "verify_repository"]

log = logging.getLogger(__name__)


def verify_repository(root: str | os.PathLike[str], names: Sequence[str] | None = None) -> list[str]:
    """Every problem found in the repository at ``root`` (empty: all is well)."""
    repository = Repository(root)
    if not repository.root.is_dir():
        return [f"{repository.root} does not exist; build it with `python -m export build --repository {root}`"]
    published = repository.names()
    for folder in sorted(p for p in repository.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not (folder / CARD_FILE).exists():
            log.warning("%s has no %s yet: being built, or left by an interrupted build", folder.name, CARD_FILE)
    if names is None:
        names = published
        if not names:
            return [f"{repository.root} holds no published model; run `python -m export build --repository {root}`"]
    problems: list[str] = []
    for name in names:
        if name not in published:
            problems.append(f"{name}: not in {repository.root} (no {CARD_FILE})")
            continue
        problems += verify_model(repository, name)
    return problems


def verify_model(repository: Repository, name: str) -> list[str]:
    """Problems with one model of ``repository``."""
    from repository.publish import check_digests

    problems = repository.check(name)  # the card's schema, version folders, sizes and hashes
    if problems:
        # A missing or mismatched file makes the deeper checks noise; report what check found.
        return problems
    card = repository.load_card(name)
    problems += check_digests(card)
    problems += _card_consistency(card)
    problems += _stray_versions(repository, card)
    problems += _config(repository, card)
    for number, version in sorted(card.versions.items()):
        for precision, variant in version.variants.items():
            if variant.published:
                path = repository.model_dir(name) / str(number) / variant.file
                problems += _onnx_file(path, card, number, precision, latest=number == card.latest_version)
                problems += _layer_tensors(path, card, number)
    return problems


def _layer_tensors(path: Path, card: ModelCard, version: int) -> list[str]:
    """Layers whose recorded tensor or weight ``path`` lacks, when it is the file the version's record is of."""
    import onnx

    record = card.versions[version].layer_outputs
    if record is None or record.file != path.name:
        return []
    graph = onnx.load_model(os.fspath(path), load_external_data=False).graph
    values = {v for node in graph.node for v in node.output} | {v.name for v in graph.input}
    weights = {i.name for i in graph.initializer}
    missing = [
        layer.name
        for layer in record.layers
        if layer.tensor not in values or (layer.weight is not None and layer.weight not in weights)
    ]
    if not missing:
        return []
    return [
        f"{card.name}: {version}/{path.name} lacks the tensors the card records for layer(s) "
        f"{', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}; rebuild it with `python -m export build`"
    ]


def _card_consistency(card: ModelCard) -> list[str]:
    problems = []
    if [t.name for t in card.inputs] != ["input"] or card.inputs[0].shape[1:] != card.input.shape:
        problems.append(f"{card.name}: the card's inputs {card.inputs} do not match its input spec {card.input.shape}")
    for out in card.outputs:
        if out.shape[1:] != [card.num_classes]:
            problems.append(
                f"{card.name}: output {out.name} has shape {out.shape} but the card lists {card.num_classes} labels"
            )
    for number, version in card.versions.items():
        if "fp32" not in version.variants or not version.variants["fp32"].published:
            problems.append(f"{card.name}: version {number} has no published float32 model")
    return problems


def _stray_versions(repository: Repository, card: ModelCard) -> list[str]:
    folder = repository.model_dir(card.name)
    found = {int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()}
    return [
        f"{card.name}: version folder {n} is not in the card (left by an interrupted build?); remove it or rebuild"
        for n in sorted(found - set(card.versions))
    ]


def _config(repository: Repository, card: ModelCard) -> list[str]:
    path = repository.model_dir(card.name) / TRITON_CONFIG_FILE
    if not path.is_file():
        return [f"{card.name}: {TRITON_CONFIG_FILE} is missing; rebuild with `python -m export build`"]
    if _settings(path.read_text()) != _settings(render_config(card)):
        return [f"{card.name}: {TRITON_CONFIG_FILE} does not match the card (edited by hand, or stale); rebuild it"]
    return []


def _settings(config: str) -> list[str]:
    """The lines of a ``config.pbtxt`` that Triton reads (comments say who wrote it, and where from)."""
    return [line for line in config.splitlines() if not line.lstrip().startswith("#")]


def _onnx_file(path: Path, card: ModelCard, version: int, precision: str, latest: bool) -> list[str]:
    from .onnx_export import ExportError, check_onnx, graph_signature, read_metadata

    where = f"{card.name}: {version}/{path.name}"
    try:
        check_onnx(path)
    except ExportError as err:
        return [f"{where}: {err}"]
    problems = []
    meta = read_metadata(path)
    expected = {"name": card.name, "version": version, "precision": precision}
    if latest:
        expected |= {"labels": card.labels, "input": card.input.model_dump(mode="json")}
    for key, want in expected.items():
        if key not in meta:
            problems.append(f"{where}: the file's metadata has no {key!r}; was it exported by another tool?")
        elif meta[key] != want:
            problems.append(f"{where}: the file's metadata says {key} = {meta[key]!r}, the card says {want!r}")
    inputs, outputs = graph_signature(path)
    if inputs != list(card.inputs) or outputs != list(card.outputs):
        problems.append(
            f"{where}: the graph's inputs/outputs {[*inputs, *outputs]} differ from the card's "
            f"{[*card.inputs, *card.outputs]}"
        )
    return problems
