"""The whole zoo as data (``python -m models catalog --out DIR``): what the torch-free service serves at ``/zoo``.

Every registered network at its canonical configuration, summarized on the meta device (no
weight is allocated: EfficientNet-B7 takes a fraction of a second), written by
:func:`repository.write_catalog`. ``make catalog`` rewrites ``service/catalog/``; a test recomputes it.
"""

from __future__ import annotations

import os
from pathlib import Path

from repository import ArchitectureEntry, PaperRecord, SummaryRecord, write_catalog

from ._registry import get_model_info, list_models
from .summary import canonical_summary

__all__ = ["write_catalog_folder", "zoo_entry"]


def zoo_entry(name: str) -> tuple[ArchitectureEntry, SummaryRecord]:
    """The index entry of ``name`` and its canonical summary (with every depth's rows)."""
    info = get_model_info(name)
    summary = canonical_summary(name)
    paper = info.paper
    entry = ArchitectureEntry(
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


def write_catalog_folder(out: str | os.PathLike[str]) -> list[Path]:
    """Write every registered network's entry and summary into ``out``; returns the files written."""
    return write_catalog(out, [zoo_entry(name) for name in list_models()])
