"""A model published before the build recorded its layers' tensors: the Explorer shows the API's 409, which says
what to do, and asks for no filters."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .browser import NetLog
from .server import ServiceProcess

if TYPE_CHECKING:
    from .pages import Page

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("page")]


@pytest.fixture(scope="module")
def service(quick_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    repository = tmp_path_factory.mktemp("unrecorded") / "model_repository"
    shutil.copytree(quick_repository / "lenet5", repository / "lenet5")
    card = repository / "lenet5" / "model.json"
    data = json.loads(card.read_text())
    for version in data["versions"].values():
        version.pop("layer_outputs", None)  # as a card written before the record existed
    card.write_text(json.dumps(data))
    process = ServiceProcess(repository).start()
    yield process
    process.stop()


def test_the_explorer_says_why_there_are_no_feature_maps(page: Page, service: ServiceProcess, netlog: NetLog) -> None:
    with service.client() as client:
        expected = client.get("/models/lenet5/filters").json()
    assert expected["code"] == "layers_not_recorded"
    page.load("explorer?model=lenet5")
    page.wait(lambda _: page.all("#explorer-drawing g.box[role=button]"), message="the drawing")
    page.all("#explorer-drawing g.box[role=button]")[0].click()
    page.wait(lambda _: expected["error"] in page.css("#explorer-maps [role=alert]").text, message="the API's 409")
    assert "409" in page.css("#explorer-maps [role=alert]").text
    assert not page.all("#explorer-maps ul.channels li")
    assert "None either" in page.text_of("#explorer-maps .maps-filters")
    assert not [r.url for r in netlog.network() if r.url.endswith("/filters")], "no filters asked after a 409"
