"""The layout's rules, enforced: imports run one way (import-linter), style is ruff's.

The import contracts are in ``pyproject.toml`` (``[tool.importlinter]``): the service and the
repository contract import no torch and none of the torch-side packages, and nothing imports
backwards along models -> training -> export. ``ruff check`` and ``ruff format --check`` run
with the settings of ``pyproject.toml`` too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_import_contracts_are_kept() -> None:
    result = _run(
        "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("command", [("check", "."), ("format", "--check", ".")], ids=["check", "format"])
def test_ruff(command: tuple[str, ...]) -> None:
    result = _run("-m", "ruff", *command)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
