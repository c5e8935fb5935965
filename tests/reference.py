"""Published facts the tests check against."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "data"


@cache
def torchvision_layouts() -> dict:
    """torchvision's parameter counts and state_dict names/shapes (tests/data/torchvision_layouts.json)."""
    return json.loads((DATA / "torchvision_layouts.json").read_text())
