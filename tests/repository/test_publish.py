"""Publishing a version: staged folder renamed into place, config.pbtxt, then the card; sealed digests."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from repository import TRITON_CONFIG_FILE, ModelCard, Repository, RepositoryError
from repository import publish as publish_module
from repository.publish import (
    card_digests,
    check_digests,
    load_previous,
    next_version,
    publish_version,
    staging_dir,
    with_version,
)
from repository.store import umask
from repository.triton import render_config
from tests.repository.cards import card_fields, version_card, write_samples, write_version_files


def _stage(repo: Repository, previous: ModelCard | None, name: str = "tiny") -> tuple[Path, ModelCard]:
    """A staged version after ``previous``, with a stray file, and the card that lists it."""
    staged = staging_dir(repo, name)
    write_version_files(staged)
    (staged / "calibration.cache").write_text("left over by a tool")
    version = version_card(staged, next_version(previous))
    return staged, with_version(card_fields(name), previous, version)


def _publish(repo: Repository, previous: ModelCard | None = None) -> ModelCard:
    staged, card = _stage(repo, previous)
    publish_version(repo, card, staged)
    return card


def test_publish_moves_the_staged_folder_into_place(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    staged, card = _stage(repo, None)
    assert staged.parent == repo.model_dir("tiny") and staged.name.startswith(".staging-")
    target = publish_version(repo, card, staged)
    assert target == repo.model_dir("tiny") / "1"
    assert not staged.exists()
    # The stray file is not in the card, so it is not published.
    assert sorted(p.name for p in target.iterdir()) == ["model.onnx"]
    assert sorted(p.name for p in repo.model_dir("tiny").iterdir()) == ["1", TRITON_CONFIG_FILE, "model.json"]
    assert (repo.model_dir("tiny") / TRITON_CONFIG_FILE).read_text() == render_config(card)
    assert repo.load_card("tiny") == card
    assert repo.check("tiny") == [] and check_digests(card) == []
    assert repo.names() == ["tiny"]


def test_sample_images_are_published_with_their_version(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    staged = staging_dir(repo, "tiny")
    write_version_files(staged)
    samples = write_samples(staged, count=3)
    (staged / "samples" / "stray.png").write_bytes(b"not listed")
    version = version_card(staged, 1).model_copy(update={"samples": samples})
    card = with_version(card_fields(), None, version)
    target = publish_version(repo, card, staged)
    assert sorted(p.name for p in (target / "samples").iterdir()) == ["0-a.png", "1-b.png", "2-c.png"]
    assert repo.load_card("tiny").versions[1].samples == samples and repo.check("tiny") == []


def test_a_staged_version_missing_a_listed_sample_is_refused(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    staged = staging_dir(repo, "tiny")
    write_version_files(staged)
    samples = write_samples(staged)
    (staged / "samples" / samples[0].file).unlink()
    card = with_version(card_fields(), None, version_card(staged, 1).model_copy(update={"samples": samples}))
    with pytest.raises(RepositoryError, match=r"staged version 1 lacks samples/0-a\.png"):
        publish_version(repo, card, staged)


def test_an_empty_samples_folder_is_not_published(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    staged, card = _stage(repo, None)
    (staged / "samples").mkdir()
    (staged / "samples" / "stray.png").write_bytes(b"not listed")
    target = publish_version(repo, card, staged)
    assert sorted(p.name for p in target.iterdir()) == ["model.onnx"]


def test_a_published_folder_is_readable_like_its_files(tmp_path: Path) -> None:
    # mkdtemp makes the staging folder 0700; the service may run as another user than the build.
    repo = Repository(tmp_path)
    staged, card = _stage(repo, None)
    target = publish_version(repo, card, staged)
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~umask()


def test_config_then_card_are_written_after_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Repository(tmp_path)
    staged, card = _stage(repo, None)
    version_dir, config = repo.model_dir("tiny") / "1", repo.model_dir("tiny") / TRITON_CONFIG_FILE
    seen: list[tuple[str, bool, bool, bool]] = []
    write_config, write_card = publish_module.write_config, Repository.write_card

    def config_spy(model_dir: Path, card: ModelCard) -> Path:
        seen.append(("config", version_dir.is_dir(), config.exists(), repo.card_path("tiny").exists()))
        return write_config(model_dir, card)

    def card_spy(self: Repository, card: ModelCard) -> Path:
        seen.append(("card", version_dir.is_dir(), config.exists(), repo.card_path("tiny").exists()))
        return write_card(self, card)

    monkeypatch.setattr(publish_module, "write_config", config_spy)
    monkeypatch.setattr(Repository, "write_card", card_spy)
    publish_version(repo, card, staged)
    assert seen == [("config", True, False, False), ("card", True, True, False)]


def test_a_staged_folder_missing_a_listed_file_is_refused(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    staged, card = _stage(repo, None)
    (staged / "model.onnx").unlink()
    with pytest.raises(RepositoryError, match=r"tiny: staged version 1 lacks model\.onnx"):
        publish_version(repo, card, staged)
    assert not (repo.model_dir("tiny") / "1").exists()
    assert not repo.card_path("tiny").exists() and not (repo.model_dir("tiny") / TRITON_CONFIG_FILE).exists()
    assert repo.names() == []


def test_debris_of_an_interrupted_build_is_replaced(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    staged, card = _stage(repo, None)
    debris = repo.model_dir("tiny") / "1"
    debris.mkdir()
    (debris / "model.onnx").write_bytes(b"half a file")
    publish_version(repo, card, staged)
    assert repo.check("tiny") == []


def test_with_version_keeps_earlier_versions_and_seals_each_new_one(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    first = _publish(repo)
    assert load_previous(repo, "tiny") == first
    second = _publish(repo, first)
    assert sorted(second.versions) == [1, 2] and second.latest_version == next_version(first) == 2
    assert second.versions[1] == first.versions[1]
    assert second.created == first.created
    for number, version in second.versions.items():
        assert version.verification.digests == card_digests(second, version), number
    # Read back from its JSON, the card still matches its digests.
    assert check_digests(repo.load_card("tiny")) == [] and repo.check("tiny") == []


def test_with_version_of_a_first_version_takes_its_time(tmp_path: Path) -> None:
    staged = tmp_path / "staged"
    write_version_files(staged)
    version = version_card(staged, 1).model_copy(update={"created": "2025-05-05T00:00:00+00:00"})
    card = with_version(card_fields(), None, version)
    assert card.created == "2025-05-05T00:00:00+00:00" and list(card.versions) == [1]


def _edited(repo: Repository, edit: Callable[[dict[str, Any]], object]) -> ModelCard:
    """The card on disk after ``edit`` changed its JSON: still valid, so only the digests can tell."""
    path = repo.card_path("tiny")
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return repo.load_card("tiny")


def test_check_digests_catches_an_edited_card(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    _publish(repo, _publish(repo))
    card = _edited(repo, lambda data: data.update(labels=["x", "y", "z"]))
    assert check_digests(card) == [
        "tiny: model.json was changed after publishing (card digest mismatch); "
        "rebuild with `python -m export build` instead of editing the card"
    ]


def test_check_digests_catches_an_edited_version(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    _publish(repo, _publish(repo))
    card = _edited(repo, lambda data: data["versions"]["1"]["training"].update(epochs=99))
    [problem] = check_digests(card)
    assert problem.startswith("tiny: version 1's entry in model.json was changed after publishing (digest mismatch)")


def test_check_digests_catches_removed_digests(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    _publish(repo)
    card = _edited(repo, lambda data: data["versions"]["1"]["verification"].pop("digests"))
    assert check_digests(card) == ["tiny: version 1 has no digests in the card; was the card edited by hand?"]


def test_load_previous_of_an_unreadable_card_says_what_to_do(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    assert load_previous(repo, "tiny") is None
    _publish(repo)
    repo.card_path("tiny").write_text("{}")
    with pytest.raises(RepositoryError, match=f"remove {repo.model_dir('tiny')} \\(or fix the card\\)"):
        load_previous(repo, "tiny")
