"""The architecture catalog: every architecture's canonical summary, served from data computed ahead.

``service/catalog/`` holds what ``python -m models catalog`` wrote (``make catalog``): the index and one
summary per architecture, shipped with the package. The service reads them without torch: the
index once, when the app is created (a missing or invalid index stops the start), and each
summary when first asked for (a few are kept).
"""

from __future__ import annotations

import functools
from pathlib import Path

from repository import ArchitectureEntry, CatalogFolder, CatalogIndex, SummaryRecord

from .errors import ArchitectureNotFound

__all__ = ["CATALOG_DIR", "ArchitectureCatalog"]

CATALOG_DIR = Path(__file__).resolve().parents[1] / "catalog"
_CACHED_SUMMARIES = 8


class ArchitectureCatalog:
    def __init__(self, folder: Path = CATALOG_DIR) -> None:
        reader = CatalogFolder(folder)
        self.index: CatalogIndex = reader.index()
        self._entries = {entry.name: entry for entry in self.index.architectures}
        self._summary = functools.lru_cache(maxsize=_CACHED_SUMMARIES)(reader.summary)

    def entry(self, name: str) -> ArchitectureEntry:
        """The index entry of ``name``; 404 listing the known architectures."""
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries)
            raise ArchitectureNotFound(
                f"architecture {name!r} is not in the zoo; architectures: {known}",
                details={"known": list(self._entries)},
            ) from None

    def summary(self, name: str) -> SummaryRecord:
        return self._summary(self.entry(name).name)
