"""GET /zoo, /zoo/{arch} and /zoo/{arch}/summary: every architecture, served or not, from the shipped data."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import httpx
import pytest
import torch

import models
from models.__main__ import main as models_cli
from repository import ArchitectureEntry, CatalogIndex, SummaryRecord

pytestmark = pytest.mark.xdist_group("service")

ROOT = Path(__file__).resolve().parents[2]


def test_the_index_lists_every_architecture(client: httpx.Client) -> None:
    r = client.get("/zoo")
    assert r.status_code == 200
    index = CatalogIndex.model_validate(r.json())
    assert [e.name for e in index.architectures] == models.list_models()
    assert (
        ArchitectureEntry.model_validate(client.get("/zoo/resnet34").json())
        == index.architectures[models.list_models().index("resnet34")]
    )


def test_vgg16_at_its_canonical_size(client: httpx.Client) -> None:
    entry = client.get("/zoo/vgg16").json()
    assert entry["params"] == 138_357_544 and entry["macs"] == 15_470_264_320 and entry["input_size"] == [3, 224, 224]
    text = client.get("/zoo/vgg16/summary", params={"format": "text"}).text
    assert "Total params: 138,357,544" in text and "Total MACs: 15.47G (15,470,264,320)" in text


def test_an_unserved_architecture_is_summarize_of_its_canonical_network(client: httpx.Client) -> None:
    served = SummaryRecord.model_validate(client.get("/zoo/efficientnet_b7/summary").json())
    assert served == models.canonical_summary("efficientnet_b7")
    assert served.total_params == 66_347_960


@pytest.mark.parametrize("name", ["resnet50", "googlenet", "efficientnet_b0", "mobilenet_v2"])
def test_depth_views_are_summarize_at_that_depth(
    client: httpx.Client, name: str, capsys: pytest.CaptureFixture
) -> None:
    with torch.device("meta"):
        net = models.create_model(name)
    depths = sorted(models.summarize(net, net.info.input_size).depths)
    assert depths and depths[0] == 1
    for depth in depths:
        expected = models.summarize(net, net.info.input_size, depth=depth)
        r = client.get(f"/zoo/{name}/summary", params={"depth": depth})
        assert r.status_code == 200
        assert SummaryRecord.model_validate(r.json()) == expected
        text = client.get(f"/zoo/{name}/summary", params={"depth": depth, "format": "text"}).text
        assert models_cli(["summary", name, "--depth", str(depth)]) == 0
        assert text == capsys.readouterr().out  # what `python -m models summary NAME --depth N` prints


def test_a_depth_that_is_not_one_is_422(client: httpx.Client) -> None:
    for bad in ("0", "-1", "two"):
        r = client.get("/zoo/resnet50/summary", params={"depth": bad})
        assert r.status_code == 422 and r.json()["code"] == "invalid_input"


@pytest.mark.parametrize("path", ["/zoo/resnet99", "/zoo/resnet99/summary", "/zoo/index", "/zoo/RESNET18"])
def test_an_unknown_architecture_is_404_listing_the_known_ones(client: httpx.Client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == "architecture_not_found" and body["status"] == 404
    assert "resnet34" in body["error"] and body["details"]["known"] == models.list_models()


@pytest.mark.parametrize("path", ["/zoo/..%2Findex.json", "/zoo/..%2F..%2Frepository/summary", "/zoo/%2E%2E/summary"])
def test_a_path_is_never_a_file(client: httpx.Client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404 and r.json()["status"] == 404


def test_bad_options_are_422(client: httpx.Client) -> None:
    r = client.get("/zoo/lenet5/summary", params={"format": "xml"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_input"


def test_the_architecture_catalog_ships_in_the_package() -> None:
    """The service reads service/catalog/ at start: an installed wheel must hold every file of it."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["service"]
    files = [p.relative_to(ROOT / "service").as_posix() for p in (ROOT / "service" / "catalog").iterdir()]
    assert "catalog/index.json" in files
    assert [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)] == []


def test_a_depth_past_the_deepest_block_is_every_layer(client: httpx.Client) -> None:
    """As ``python -m models summary NAME --depth N``: every module that deep is a leaf, so the rows are the layers."""
    for arch, deepest in (("lenet5", 1), ("resnet18", 3)):
        leaves = client.get(f"/zoo/{arch}/summary").json()
        for depth in (deepest + 1, deepest + 5):
            r = client.get(f"/zoo/{arch}/summary", params={"depth": depth})
            assert r.status_code == 200, r.text
            assert r.json()["layers"] == leaves["layers"] and r.json()["total_macs"] == leaves["total_macs"]
        assert len(client.get(f"/zoo/{arch}/summary", params={"depth": deepest}).json()["layers"]) < len(
            leaves["layers"]
        )
