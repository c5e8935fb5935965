"""The zoo folder's contract: what ``python -m models catalog`` writes and the service reads, without torch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repository import ArchitectureEntry, CatalogFolder, PaperRecord, write_catalog

from .test_summary import STEM

PAPER = PaperRecord(
    title="Deep Residual Learning for Image Recognition",
    authors="He, Zhang, Ren, Sun",
    year=2015,
    url="https://arxiv.org/abs/1512.03385",
)
ENTRY = ArchitectureEntry(
    name="resnet-stem",
    family="resnet",
    paper=PAPER,
    input_size=[3, 224, 224],
    num_classes=1000,
    params=STEM.total_params,
    macs=STEM.total_macs,
    description="a stem and a classifier",
)


def test_write_and_read_back(tmp_path: Path) -> None:
    written = write_catalog(tmp_path, [(ENTRY, STEM)])
    assert [p.name for p in written] == ["index.json", "resnet-stem.json"]
    zoo = CatalogFolder(tmp_path)
    assert zoo.index().architectures == [ENTRY]
    assert zoo.summary("resnet-stem") == STEM


def test_the_files_are_compact_json(tmp_path: Path) -> None:
    write_catalog(tmp_path, [(ENTRY, STEM)])
    text = (tmp_path / "resnet-stem.json").read_text()
    assert (
        "\n" not in text.rstrip("\n")
        and ", " not in text
        and text == json.dumps(STEM.to_dict(), separators=(",", ":")) + "\n"
    )


def test_an_architecture_no_longer_in_the_zoo_is_removed(tmp_path: Path) -> None:
    write_catalog(tmp_path, [(ENTRY, STEM), (ENTRY.model_copy(update={"name": "old"}), STEM)])
    write_catalog(tmp_path, [(ENTRY, STEM)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json", "resnet-stem.json"]


@pytest.mark.parametrize("name", ["../index", "a/b", "", "UPPER"])
def test_a_name_is_never_a_path(tmp_path: Path, name: str) -> None:
    write_catalog(tmp_path, [(ENTRY, STEM)])
    with pytest.raises(ValueError, match="invalid architecture name"):
        CatalogFolder(tmp_path).summary(name)


def test_a_paper_reads_back_from_its_text() -> None:
    text = "He, Zhang, Ren, Sun (2015), Deep Residual Learning for Image Recognition. https://arxiv.org/abs/1512.03385"
    assert PaperRecord.parse(text) == PAPER
    # A title with full stops, a paper without a URL, and text in no known form.
    dotted = "Ng (2017), Convolutional Neural Networks (deeplearning.ai), week 1. https://www.coursera.org/learn/x"
    assert PaperRecord.parse(dotted).title == "Convolutional Neural Networks (deeplearning.ai), week 1"
    slides = PaperRecord.parse("Abnane (2023), Deep Learning (course slides). ")
    assert (slides.title, slides.authors, slides.year, slides.url) == (
        "Deep Learning (course slides)",
        "Abnane",
        2023,
        None,
    )
    assert PaperRecord.parse("an internal report") == PaperRecord(title="an internal report")
