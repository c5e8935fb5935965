"""What the network sees, on the page: a layer's feature maps and the first convolution's filters in the Explorer,
the occlusion map over the input in the Playground. Each is compared with the public endpoint's answer for the
same image, requested by the test itself."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from selenium.webdriver.common.keys import Keys

from .browser import NetLog, axe_violations, describe_violations, emulate_width
from .server import ServiceProcess
from .test_page import digit_png

if TYPE_CHECKING:
    from .pages import Page

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("page")]


def post_image(service: ServiceProcess, path: str, image: bytes, **params: Any) -> dict[str, Any]:
    with service.client() as client:
        response = client.post(path, params=params, files={"file": ("image.png", image)})
    response.raise_for_status()
    return response.json()


def shown_number(text: str) -> float:
    return float(text.rstrip("%")) / (100 if text.endswith("%") else 1)


def assert_layer_shown(page: Page, layer: dict[str, Any]) -> None:
    """The statistics (3 significant digits on the page) and the channel images, most active first, as answered."""
    shown = {e.get_attribute("data-stat"): e.text.strip() for e in page.all("#explorer-maps [data-stat]")}
    assert shown["shape"] == "×".join(map(str, layer["shape"]))
    for stat in ("min", "max", "mean"):
        assert math.isclose(shown_number(shown[stat]), layer[stat], rel_tol=5e-3, abs_tol=1e-9), (stat, shown, layer)
    assert abs(shown_number(shown["zeros"]) - layer["zeros"]) <= 5e-4, (shown["zeros"], layer["zeros"])
    channels = page.all("#explorer-maps ul.channels li")
    assert [int(li.get_attribute("data-channel")) for li in channels] == [c["index"] for c in layer["images"]]
    assert len(page.all("#explorer-maps ul.channels li img")) == len(layer["images"])


def assert_fits_a_phone(page: Page) -> None:
    emulate_width(page.driver, 375)
    try:
        width = page.driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert width == [375, 375], f"{width[0]} px wide on a {width[1]} px screen"
    finally:
        emulate_width(page.driver, None)


def assert_accessible(page: Page) -> None:
    violations = axe_violations(page.driver)
    assert not violations, describe_violations(violations)


# --- the explorer ------------------------------------------------------------------------------------------------


def test_a_layers_feature_maps_for_the_playgrounds_image(
    page: Page, service: ServiceProcess, netlog: NetLog, tmp_path: Path
) -> None:
    image = digit_png(4)
    path = tmp_path / "four.png"
    path.write_bytes(image)
    page.load("playground?model=lenet5")
    page.wait(lambda _: page.css("#pg-model").get_attribute("value") == "lenet5")
    page.upload("#pg-file", str(path))
    page.text_of("#pg-top1")
    page.go("explorer?model=lenet5")
    page.wait(lambda _: page.all("#explorer-drawing g.box[role=button]"), message="the drawing")
    assert "Select a layer" in page.text_of("#explorer-maps .maps-hint")
    assert not [r.url for r in netlog.network() if "/activations" in r.url or "/filters" in r.url], "none before"
    # The second convolution (16 channels): a box of the drawing selects it.
    page.css("#explorer-drawing g.box[data-call='features.3']").click()
    page.wait(lambda _: page.all("#explorer-maps ul.channels li"), message="the channel images")
    assert "four.png" in page.text_of("#explorer-maps .maps-input")
    answer = post_image(service, "/models/lenet5/activations", image, layers="features.3")
    assert_layer_shown(page, answer["layers"][0])
    # The first convolution's filters beside them, as GET /filters reads them from the served file.
    filters = page.wait(lambda _: page.all("#explorer-maps ul.filters li img"), message="the filters")
    with service.client() as client:
        expected = client.get("/models/lenet5/filters").json()
    assert len(filters) == len(expected["filters"]) == expected["filters_total"]
    assert expected["layer"] in page.text_of("#explorer-maps .maps-filters")
    # One layer per request, the filters once.
    calls = [r.url for r in netlog.network() if "/activations" in r.url or "/filters" in r.url]
    assert [url.rsplit("/", 1)[1] for url in calls] == ["activations?layers=features.3", "filters"], calls
    assert_accessible(page)
    assert_fits_a_phone(page)


def test_a_repeated_modules_call_for_a_sample_by_keyboard(page: Page, service: ServiceProcess) -> None:
    # ResNet's blocks call their ReLU twice: the table's second row of it is the API's `layer1.0.relu#2`.
    with service.client() as client:
        sample = client.get("/models/resnet18/samples").json()["samples"][0]
        image = client.get(sample["url"]).content
    page.load("explorer?model=resnet18")
    page.wait(lambda _: page.all("#explorer-table tbody tr"), message="the table")
    button = page.css("#explorer-table tr[data-call='layer1.0.relu#2'] button.row-select")
    button.send_keys(Keys.ENTER)
    page.wait(lambda _: page.all("#explorer-maps ul.channels li"), message="the channel images")
    assert "layer1.0.relu#2" in page.text_of("#explorer-maps h3")
    assert sample["file"].split("/")[-1] in page.text_of("#explorer-maps .maps-input")
    assert button.get_attribute("aria-pressed") == "true"
    assert [r.get_attribute("data-call") for r in page.all("#explorer-table tbody tr.selected")] == ["layer1.0.relu#2"]
    answer = post_image(service, "/models/resnet18/activations", image, layers="layer1.0.relu#2")
    assert_layer_shown(page, answer["layers"][0])
    assert answer["layers"][0]["zeros"] > 0  # after a ReLU


# --- the playground ------------------------------------------------------------------------------------------------


def cell_count(page: Page) -> int:
    return len(page.all("#pg-occlusion svg.occ-map rect.cell"))


def test_the_occlusion_map_over_the_input(page: Page, service: ServiceProcess, tmp_path: Path) -> None:
    image = digit_png(7)
    path = tmp_path / "seven.png"
    path.write_bytes(image)
    page.load("playground?model=lenet5")
    page.wait(lambda _: page.css("#pg-model").get_attribute("value") == "lenet5")
    page.upload("#pg-file", str(path))
    page.text_of("#pg-top1")
    page.css("#occ-run").click()
    answer = post_image(service, "/models/lenet5/occlusion", image)
    page.wait(lambda _: cell_count(page) == answer["rows"] * answer["cols"], message="one cell per patch position")
    figure = page.css("#pg-occlusion figure.occlusion")
    assert (int(figure.get_attribute("data-rows")), int(figure.get_attribute("data-cols"))) == (
        answer["rows"],
        answer["cols"],
    )
    assert page.text_of("#occ-label") == answer["label"]
    assert page.text_of("#occ-baseline") == f"{answer['baseline'] * 100:.1f}%"
    # Aligned with the input the model sees: the map's pixels are the input's, the image under it is /preprocess's.
    svg = page.css("#pg-occlusion svg.occ-map")
    assert svg.get_dom_attribute("viewBox") == "0 0 32 32"
    assert page.css("#pg-occlusion svg.occ-map image").get_dom_attribute("href").startswith("data:image/png;base64,")
    # The empty fields were the API's defaults; they now say which.
    assert page.css("#occ-patch").get_attribute("placeholder") == str(answer["patch"])
    assert page.css("#occ-stride").get_attribute("placeholder") == str(answer["stride"])
    # Numbers without colour: the focused map reads a cell; the arrow keys move; the table holds them all.
    page.driver.execute_script("arguments[0].focus()", svg)
    svg.send_keys(Keys.ARROW_RIGHT)
    readout = page.text_of("#pg-occlusion .occ-readout")
    found = re.search(r"rows (\d+)–\d+, columns (\d+)–\d+: (drops|rises) (\d+\.\d) points", readout)
    assert found, readout
    row, col = answer["y"].index(int(found[1])), answer["x"].index(int(found[2]))
    drop = answer["drop"][row][col]
    assert f"{abs(drop) * 100:.1f}" == found[4] and (found[3] == "drops") == (drop >= 0)
    assert len(page.all("#pg-occlusion details.occ-table tbody td")) == answer["rows"] * answer["cols"]
    assert_accessible(page)
    assert_fits_a_phone(page)
    # Another patch and stride, as the API answers them.
    page.css("#occ-patch").send_keys("16")
    page.css("#occ-stride").send_keys("8")
    page.css("#occ-run").click()
    coarse = post_image(service, "/models/lenet5/occlusion", image, patch=16, stride=8)
    assert coarse["rows"] * coarse["cols"] != answer["rows"] * answer["cols"]
    page.wait(lambda _: cell_count(page) == coarse["rows"] * coarse["cols"], message="the coarser grid")
