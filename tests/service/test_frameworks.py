"""The frameworks whose internals the service uses are the release series it was tested with."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from service.frameworks import TESTED_SERIES, untested_versions

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_frameworks_are_the_tested_series() -> None:
    untested = untested_versions()
    assert not untested, (
        f"untested framework release(s) {untested}: the service uses their internals (service/frameworks.py "
        "says which); read the release notes and those functions, run the suite, then move TESTED_SERIES "
        "and the bounds in pyproject.toml"
    )


def test_pyproject_bounds_each_framework_to_its_tested_series() -> None:
    serve = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["serve"]
    requirements = {Requirement(text).name: Requirement(text).specifier for text in serve}
    for name, series in TESTED_SERIES.items():
        major, minor = (int(part) for part in series.split("."))
        specifier = requirements[name]
        assert f"{series}.0" in specifier and f"{series}.99" in specifier, (name, str(specifier))
        assert f"{major}.{minor + 1}.0" not in specifier and f"{major}.{minor - 1}.99" not in specifier, name
