"""The zoo data the service ships (``service/catalog/``) is what the code computes, and what summarize gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import models
from models.__main__ import main as cli
from repository import CatalogFolder, PaperRecord

ZOO = Path(__file__).resolve().parents[2] / "service" / "catalog"


def test_the_committed_zoo_is_what_the_command_computes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Every file recomputed (about 10 s for the 36 networks on 2 cores): the data cannot drift from the code."""
    assert cli(["catalog", "--out", str(tmp_path)]) == 0
    assert f"{tmp_path}: {len(models.list_models())} architectures and the index" in capsys.readouterr().out
    fresh = sorted(tmp_path.glob("*.json"))
    assert sorted(p.name for p in ZOO.glob("*.json")) == [p.name for p in fresh], "run `make catalog`"
    for path in fresh:
        assert (ZOO / path.name).read_bytes() == path.read_bytes(), f"{path.name} is stale: run `make catalog`"


def test_the_index_lists_every_network_with_its_canonical_counts() -> None:
    index = {e.name: e for e in CatalogFolder(ZOO).index().architectures}
    assert list(index) == models.list_models()
    vgg16 = index["vgg16"]
    assert (vgg16.params, vgg16.macs, vgg16.input_size, vgg16.num_classes) == (
        138_357_544,
        15_470_264_320,
        [3, 224, 224],
        1000,
    )
    assert vgg16.family == "vgg" and vgg16.paper.year == 2014 and vgg16.paper.url == "https://arxiv.org/abs/1409.1556"
    for name, entry in index.items():
        info = models.get_model_info(name)
        assert (entry.family, entry.description, entry.input_size) == (
            info.family,
            info.description,
            list(info.input_size),
        )


@pytest.mark.parametrize("name", ["resnet50", "googlenet", "efficientnet_b0", "mobilenet_v2"])
def test_each_depth_is_summarize_at_that_depth(name: str) -> None:
    stored = CatalogFolder(ZOO).summary(name)
    with torch.device("meta"):
        net = models.create_model(name)
    shape = net.info.input_size
    assert stored.layers == models.summarize(net, shape).layers
    deepest = max(n.count(".") + 1 for n, _ in net.named_modules() if n)
    assert sorted(stored.depths) == list(range(1, deepest))
    for depth in stored.depths:
        expected = models.summarize(net, shape, depth=depth)
        assert stored.at_depth(depth) == expected
        assert stored.at_depth(depth).to_text() == expected.to_text()


def test_every_paper_reads_back_from_the_text_a_card_holds() -> None:
    """A card keeps ``str(info.paper)``; GET /models gives it back as a record."""
    for name in models.list_models():
        paper = models.get_model_info(name).paper
        expected = PaperRecord(title=paper.title, authors=paper.authors, year=paper.year, url=paper.url or None)
        assert PaperRecord.parse(str(paper)) == expected, name
