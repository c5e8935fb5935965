"""``python -m bench.views`` against the session's quick repository: every view answered, the table printed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.views import VIEWS, main

pytestmark = pytest.mark.xdist_group("servers")


def test_the_cost_of_each_view_is_measured(quick_repository: Path, capsys: pytest.CaptureFixture) -> None:
    main(["--repository", str(quick_repository), "--models", "lenet5,resnet18", "--repeat", "2"])
    out = capsys.readouterr().out
    rows = re.findall(r"^\| (\S+) \| (\w+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d,]+) \|$", out, re.MULTILINE)
    assert [(model, view) for model, view, *_ in rows] == [(m, v) for m in ("lenet5", "resnet18") for v in VIEWS]
    for _, view, first, median, p90, size in rows:
        assert float(first) > 0 and 0 < float(median) <= float(p90)
        assert int(size.replace(",", "")) > (1000 if view in ("activations", "filters") else 100)
    assert "load average at the end" in out
