"""The zoo as data: every architecture's canonical summary, computed ahead, readable without torch.

``python -m models catalog --out DIR`` builds each registered network on the meta device and writes::

    DIR/index.json     a CatalogIndex: one ArchitectureEntry per architecture (family, paper, input, counts)
    DIR/<name>.json    its canonical SummaryRecord, every depth's rows included

The service ships such a folder (``service/catalog/``) and serves it, so that any architecture can be
explored whether or not it is served; ``tests/models/test_catalog.py`` recomputes every file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from .store import NAME_PATTERN, write_text_atomic
from .summary import SummaryRecord

__all__ = ["CATALOG_INDEX_FILE", "ArchitectureEntry", "CatalogFolder", "CatalogIndex", "PaperRecord", "write_catalog"]

CATALOG_INDEX_FILE = "index.json"

# How models.Paper writes itself: "Authors (year), Title. URL" (the URL may be empty).
_PAPER_TEXT = re.compile(r"^(?P<authors>.+?) \((?P<year>\d{4})\), (?P<title>.+?)\. ?(?P<url>\S*)$")


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PaperRecord(_Record):
    """The paper that introduced an architecture."""

    title: str
    authors: str = ""
    year: int | None = None
    url: str | None = None

    @classmethod
    def parse(cls, text: str) -> PaperRecord:
        """The record of a card's ``architecture.paper`` (``models.Paper``'s text); other text is the title."""
        match = _PAPER_TEXT.match(text.strip())
        if match is None:
            return cls(title=text.strip())
        return cls(title=match["title"], authors=match["authors"], year=int(match["year"]), url=match["url"] or None)


class ArchitectureEntry(_Record):
    """One architecture of the zoo at its canonical configuration (input size, classes)."""

    name: str
    family: str
    paper: PaperRecord
    input_size: list[int]
    num_classes: int
    params: int
    macs: int
    description: str


class CatalogIndex(_Record):
    architectures: list[ArchitectureEntry]


def _compact(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":")) + "\n"


def write_catalog(
    folder: str | os.PathLike[str], items: Sequence[tuple[ArchitectureEntry, SummaryRecord]]
) -> list[Path]:
    """Write the index and one summary per entry into ``folder`` (compact JSON); returns the files written.

    Summaries of architectures no longer in ``items`` are removed, so the folder is exactly the zoo.
    """
    root = Path(folder)
    index = CatalogIndex(architectures=[entry for entry, _ in items])
    written = [root / CATALOG_INDEX_FILE]
    write_text_atomic(written[0], _compact(index.model_dump(mode="json")))
    for entry, summary in items:
        path = root / f"{entry.name}.json"
        write_text_atomic(path, _compact(summary.to_dict()))
        written.append(path)
    for stale in set(root.glob("*.json")) - set(written):
        stale.unlink()
    return written


class CatalogFolder:
    """Reads a folder written by :func:`write_catalog`; names are looked up in the index, never used as paths."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.root = Path(folder)

    def index(self) -> CatalogIndex:
        return CatalogIndex.model_validate_json((self.root / CATALOG_INDEX_FILE).read_bytes())

    def summary(self, name: str) -> SummaryRecord:
        """The summary of ``name`` (a name of the index: callers check it, this checks the alphabet)."""
        if not NAME_PATTERN.match(name):
            raise ValueError(f"invalid architecture name {name!r}")
        return SummaryRecord.model_validate_json((self.root / f"{name}.json").read_bytes())
