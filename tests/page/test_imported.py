"""A network imported with ``python -m export import-onnx`` (one the zoo does not have) on the page: the Explorer
shows the summary read from its graph, as the API answers it, and a layer's feature maps and its filters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from export.onnx_import import import_onnx
from tests.export.onnx_files import export_torchscript, tiny_squeeze

from .server import ServiceProcess
from .test_page import assert_totals, summary, wait_for_summary

if TYPE_CHECKING:
    from .pages import Page

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("page")]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    folder = tmp_path_factory.mktemp("imported")
    onnx_file = export_torchscript(tiny_squeeze(), folder / "squeeze.onnx")
    repository = folder / "model_repository"
    import_onnx(onnx_file, name="tinysqueeze", labels=[str(i) for i in range(10)], repository=repository)
    process = ServiceProcess(repository).start()
    yield process
    process.stop()


def test_the_explorer_shows_an_imported_network(page: Page, service: ServiceProcess, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(photo)
    page.load("playground?model=tinysqueeze")  # the image the feature maps are of (an import has no samples)
    page.wait(lambda _: page.css("#pg-model").get_attribute("value") == "tinysqueeze")
    page.upload("#pg-file", str(photo))
    page.text_of("#pg-top1")
    record = summary(service, "/models/tinysqueeze/summary")
    page.go("explorer?model=tinysqueeze")
    wait_for_summary(page, "tinysqueeze", len(record["layers"]))
    assert_totals(page, record)
    names = [row.get_attribute("data-name") for row in page.all("#explorer-table tbody tr")]
    assert names == [layer["name"] for layer in record["layers"]]
    assert "features.3.expand3" in names, "the fire module's layers, named as in the exported network"
    page.wait(lambda _: page.all("#explorer-drawing g.box[role=button]"), message="the drawing")
    page.css("#explorer-drawing g.box[data-name='features.3.expand3']").click()
    page.wait(lambda _: page.all("#explorer-maps ul.channels li"), message="the feature maps")
    filters = page.wait(lambda _: page.all("#explorer-maps ul.filters li img"), message="the filters")
    with service.client() as client:
        expected = client.get("/models/tinysqueeze/filters").json()
    assert len(filters) == len(expected["filters"])
