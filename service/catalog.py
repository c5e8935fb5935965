"""The zoo catalog: every architecture's canonical summary, served from data computed ahead.

``service/zoo/`` holds what ``python -m models zoo`` wrote (``make zoo``): the index and one
summary per architecture, shipped with the package. The service reads them without torch: the
index once, when the app is created (a missing or invalid index stops the start), and each
summary when first asked for (a few are kept).
"""

from __future__ import annotations

import functools
from pathlib import Path

from repository import SummaryRecord, ZooEntry, ZooFolder, ZooIndex

from .errors import ArchitectureNotFound

__all__ = ["ZOO_DIR", "ZooCatalog"]

ZOO_DIR = Path(__file__).parent / "zoo"
_CACHED_SUMMARIES = 8


class ZooCatalog:
    def __init__(self, folder: Path = ZOO_DIR) -> None:
        reader = ZooFolder(folder)
        self.index: ZooIndex = reader.index()
        self._entries = {entry.name: entry for entry in self.index.architectures}
        self._summary = functools.lru_cache(maxsize=_CACHED_SUMMARIES)(reader.summary)

    def entry(self, name: str) -> ZooEntry:
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
