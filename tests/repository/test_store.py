"""The repository on disk: which folders are models, card errors that name the file, check(), atomic writes."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from repository import (
    CARD_FILE,
    ModelCard,
    Repository,
    RepositoryError,
    SampleImage,
    write_json_atomic,
    write_text_atomic,
)
from repository.store import umask
from tests.repository.cards import write_model, write_samples


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    write_model(tmp_path, "tiny", versions=(1, 2))
    return Repository(tmp_path)


@pytest.fixture
def mask_027() -> Iterator[int]:
    """A umask other than the usual 022, so that a permission copied from elsewhere would show."""
    previous = os.umask(0o027)
    try:
        yield 0o027
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- names ------------------------------------------------------------------------------------


def test_names_lists_folders_with_a_card_under_a_valid_name(tmp_path: Path) -> None:
    for folder in ("lenet5", "resnet18", "no-card", "Upper", ".staging-x", "-dash", "a b"):
        (tmp_path / folder).mkdir()
    for folder in ("lenet5", "resnet18", "Upper", ".staging-x", "-dash", "a b"):
        (tmp_path / folder / CARD_FILE).write_text("{}")
    (tmp_path / "loose-file").write_text("not a folder")
    (tmp_path / "card-is-a-folder").mkdir()
    (tmp_path / "card-is-a-folder" / CARD_FILE).mkdir()
    assert Repository(tmp_path).names() == ["lenet5", "resnet18"]


def test_names_of_a_missing_root_is_empty(tmp_path: Path) -> None:
    assert Repository(tmp_path / "absent").names() == []


@pytest.mark.parametrize("name", ["../etc", "Upper", "", "a/b", ".hidden", "x" * 65])
def test_a_bad_name_is_never_a_path(repo: Repository, name: str) -> None:
    with pytest.raises(RepositoryError, match="invalid model name"):
        repo.model_dir(name)


# --- load_card --------------------------------------------------------------------------------


def test_load_card_round_trips_the_written_card(tmp_path: Path) -> None:
    card = write_model(tmp_path)
    assert Repository(tmp_path).load_card("tiny") == card


def test_a_missing_card_names_its_path(repo: Repository) -> None:
    (repo.root / "empty").mkdir()
    with pytest.raises(RepositoryError, match="no model card at") as err:
        repo.load_card("empty")
    assert str(repo.card_path("empty")) in str(err.value)


@pytest.mark.parametrize(
    "edit",
    [
        lambda card: "{ not json",
        lambda card: json.dumps({**card, "labels": "abc"}),
        lambda card: json.dumps({**card, "unknown_field": 1}),
    ],
    ids=["not-json", "wrong-type", "extra-field"],
)
def test_an_invalid_card_names_its_path(repo: Repository, edit: Callable[[dict], str]) -> None:
    path = repo.card_path("tiny")
    path.write_text(edit(json.loads(path.read_text())))
    with pytest.raises(RepositoryError, match="invalid model card") as err:
        repo.load_card("tiny")
    assert str(path) in str(err.value)


def test_a_card_in_another_models_folder_is_refused(repo: Repository) -> None:
    other = repo.model_dir("other")
    other.mkdir()
    (other / CARD_FILE).write_bytes(repo.card_path("tiny").read_bytes())
    with pytest.raises(RepositoryError, match="other: card names the model 'tiny'"):
        repo.load_card("other")


# --- check ------------------------------------------------------------------------------------


def test_check_of_a_complete_model_finds_nothing(repo: Repository) -> None:
    # The unpublished fp16 variant has no file, and need not have one.
    assert repo.check("tiny") == []


def test_check_reports_a_missing_version_folder(repo: Repository) -> None:
    shutil.rmtree(repo.model_dir("tiny") / "2")
    assert repo.check("tiny") == ["tiny: version 2 is in the card but its folder is missing"]


def test_check_reports_a_missing_file(repo: Repository) -> None:
    repo.variant_path("tiny", 1).unlink()
    assert repo.check("tiny") == ["tiny: version 1 fp32 file model.onnx is missing"]


def test_check_reports_a_size_mismatch(repo: Repository) -> None:
    path = repo.variant_path("tiny", 2)
    path.write_bytes(path.read_bytes() + b"x")
    assert repo.check("tiny") == [f"tiny: {Path('tiny', '2', 'model.onnx')} has 65 bytes, the card says 64"]


def test_check_reports_a_sha256_mismatch_at_the_same_size(repo: Repository) -> None:
    path = repo.variant_path("tiny", 1)
    data = path.read_bytes()
    path.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])
    assert repo.check("tiny") == [f"tiny: {Path('tiny', '1', 'model.onnx')} does not match its sha256 in the card"]


def test_check_reports_every_problem_of_every_version(repo: Repository) -> None:
    repo.variant_path("tiny", 1).unlink()
    path = repo.variant_path("tiny", 2)
    path.write_bytes(b"")
    assert repo.check("tiny") == [
        "tiny: version 1 fp32 file model.onnx is missing",
        f"tiny: {Path('tiny', '2', 'model.onnx')} has 0 bytes, the card says 64",
    ]


def _with_samples(repo: Repository) -> ModelCard:
    card = repo.load_card("tiny")
    samples = write_samples(repo.model_dir("tiny") / "2")
    card = card.model_copy(
        update={"versions": {**card.versions, 2: card.versions[2].model_copy(update={"samples": samples})}}
    )
    repo.write_card(card)
    return card


def test_check_of_complete_samples_finds_nothing(repo: Repository) -> None:
    card = _with_samples(repo)
    assert repo.load_card("tiny") == card and len(card.versions[2].samples) == 2
    assert repo.check("tiny") == []
    assert (
        repo.sample_path("tiny", 2, card.versions[2].samples[1]) == repo.model_dir("tiny") / "2" / "samples" / "1-b.png"
    )


def test_check_reports_a_missing_or_changed_sample(repo: Repository) -> None:
    _with_samples(repo)
    (repo.model_dir("tiny") / "2" / "samples" / "0-a.png").unlink()
    (repo.model_dir("tiny") / "2" / "samples" / "1-b.png").write_bytes(b"edited")
    assert repo.check("tiny") == [
        "tiny: version 2 sample 0-a.png is missing",
        "tiny: tiny/2/samples/1-b.png does not match its sha256 in the card",
    ]


@pytest.mark.parametrize("file", ["../model.onnx", "a/b.png", ".hidden.png", "x.jpg", ""])
def test_a_sample_name_is_never_a_path(file: str) -> None:
    with pytest.raises(ValidationError, match="file"):
        SampleImage(file=file, label=None, index=None, sha256="0" * 64)


def test_check_of_an_unreadable_card_is_its_error(repo: Repository) -> None:
    repo.card_path("tiny").write_text("{}")
    [problem] = repo.check("tiny")
    assert problem.startswith(f"tiny: invalid model card {repo.card_path('tiny')}")


# --- atomic writes ----------------------------------------------------------------------------


def test_write_json_atomic_writes_the_data_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "data.json"
    write_json_atomic(path, {"b": 1, "a": [1, 2]})
    write_json_atomic(path, {"c": "replaced"})
    assert json.loads(path.read_text()) == {"c": "replaced"}
    assert path.read_text().endswith("\n")
    assert [p.name for p in path.parent.iterdir()] == ["data.json"]


@pytest.mark.usefixtures("mask_027")
def test_write_json_atomic_gives_the_usual_permissions_not_mkstemps(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    write_json_atomic(path, {})
    assert _mode(path) == 0o666 & ~0o027 == 0o640


def test_write_json_atomic_follows_the_current_umask(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    write_json_atomic(path, {})
    assert _mode(path) == 0o666 & ~umask()


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "data.json"
    write_json_atomic(path, {"old": True})

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomic(path, "new")
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]


def test_umask_reads_without_changing_it(mask_027: int) -> None:
    assert umask() == mask_027
    assert umask() == mask_027
