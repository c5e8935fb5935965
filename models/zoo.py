"""The whole zoo as data (``python -m models zoo --out DIR``): what the torch-free service serves at ``/zoo``.

Every registered network at its canonical configuration, summarized on the meta device (no
weight is allocated: EfficientNet-B7 takes a fraction of a second), written by
:func:`repository.write_zoo`. ``make zoo`` rewrites ``service/zoo/``; a test recomputes it.
"""

from __future__ import annotations

import os
from pathlib import Path

from repository import PaperRecord, SummaryRecord, ZooEntry, write_zoo

from ._registry import get_model_info, list_models
from .summary import canonical_summary

__all__ = ["write_zoo_folder", "zoo_entry"]


def zoo_entry(name: str) -> tuple[ZooEntry, SummaryRecord]:
    """The index entry of ``name`` and its canonical summary (with every depth's rows)."""
    info = get_model_info(name)
    summary = canonical_summary(name)
    paper = info.paper
    entry = ZooEntry(
        name=info.name,
        family=info.family,
        paper=PaperRecord(title=paper.title, authors=paper.authors, year=paper.year, url=paper.url or None),
        input_size=list(info.input_size),
        num_classes=info.num_classes,
        params=summary.total_params,
        macs=summary.total_macs,
        description=info.description,
    )
    return entry, summary


def write_zoo_folder(out: str | os.PathLike[str]) -> list[Path]:
    """Write every registered network's entry and summary into ``out``; returns the files written."""
    return write_zoo(out, [zoo_entry(name) for name in list_models()])
