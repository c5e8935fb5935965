"""Logging of ``python -m service``: one line per record, saying which process of a group wrote it."""

from __future__ import annotations

import logging

__all__ = ["configure_logging"]


def configure_logging(level: str, process: str | None = None) -> None:
    """Root logging at ``level``; ``process`` ("worker 1", "supervisor") goes into every line of a group's log."""
    tag = f"[{process}] " if process else ""
    logging.basicConfig(level=level.upper(), format=f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s", force=True)
