"""``python -m repository check DIR`` as a build step runs it: exit codes 0, 1 and 2 and what it prints."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from repository import Repository
from tests.repository.cards import write_model

ROOT = Path(__file__).resolve().parents[2]


def check(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "repository", *argv], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_a_sound_repository_passes(tmp_path: Path) -> None:
    write_model(tmp_path, "lenet5")
    write_model(tmp_path, "tiny", versions=(1, 2))
    result = check("check", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{tmp_path}: 2 model(s): lenet5, tiny\n"
    assert result.stderr == ""


@pytest.mark.parametrize("make", [lambda root: root.mkdir(), lambda root: None], ids=["empty", "missing"])
def test_a_repository_without_models_fails(tmp_path: Path, make: Callable[[Path], object]) -> None:
    root = tmp_path / "repo"
    make(root)
    result = check("check", str(root))
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {root} holds no model (no <name>/model.json)")
    assert "python -m export build --repository DIR" in result.stderr
    assert result.stdout == ""


def test_every_problem_is_listed_and_fails(tmp_path: Path) -> None:
    write_model(tmp_path, "lenet5")
    write_model(tmp_path, "tiny", versions=(1, 2))
    repo = Repository(tmp_path)
    repo.variant_path("lenet5", 1).unlink()
    repo.variant_path("tiny", 2).write_bytes(b"")
    result = check("check", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: lenet5: version 1 fp32 file model.onnx is missing",
        f"error: tiny: {Path('tiny', '2', 'model.onnx')} has 0 bytes, the card says 64",
    ]
    assert result.stdout == ""


def test_an_invalid_card_fails_naming_it(tmp_path: Path) -> None:
    write_model(tmp_path, "tiny")
    Repository(tmp_path).card_path("tiny").write_text("{}")
    result = check("check", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: tiny: invalid model card {tmp_path / 'tiny' / 'model.json'}")


@pytest.mark.parametrize("argv", [(), ("check",), ("verify", "."), ("check", "a", "b")])
def test_a_wrong_command_line_prints_the_usage(argv: tuple[str, ...]) -> None:
    result = check(*argv)
    assert result.returncode == 2
    assert result.stderr == "usage: python -m repository check MODEL_REPOSITORY\n"
    assert result.stdout == ""
