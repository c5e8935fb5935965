"""The page in headless Chromium against ``python -m service`` on the quick repository (lenet5, resnet18).

Each number the page shows is checked against the public endpoint it comes from, requested by the test
itself; each request the page makes must stay on 127.0.0.1 (conftest); axe-core finds no serious or
critical violation in any view.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from PIL import Image

from .browser import NetLog, axe_violations, describe_violations, emulate_width
from .server import ServiceProcess

if TYPE_CHECKING:
    from .pages import Page

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("page")]

FIRST_LOAD_MAX_REQUESTS = 20  # the page, its CSS, its modules, the favicon and GET /models: about a dozen


def digit_png(index: int = 0, size: int = 64) -> bytes:
    """A real handwritten digit of scikit-learn's set, white on black, as a PNG."""
    from sklearn.datasets import load_digits

    pixels = (load_digits().images[index] * 255 / 16).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR).save(out, format="PNG")
    return out.getvalue()


def top1(service: ServiceProcess, model: str, data: bytes, filename: str = "image.png") -> str:
    with service.client() as client:
        response = client.post(f"/models/{model}/predict", files={"file": (filename, data)})
    response.raise_for_status()
    return response.json()["predictions"][0]["top_k"][0]["label"]


def grouped(n: int) -> str:
    return f"{n:,}"


def summary(service: ServiceProcess, path: str, **params: Any) -> dict[str, Any]:
    with service.client() as client:
        response = client.get(path, params=params)
    response.raise_for_status()
    return response.json()


def shown_totals(page: Page) -> dict[str, str]:
    return {e.get_attribute("data-total"): e.text.strip() for e in page.all("#explorer-totals [data-total]")}


def wait_for_summary(page: Page, name: str, rows: int) -> None:
    page.wait(
        lambda _: name in page.css("#explorer-heading").text and len(page.all("#explorer-table tbody tr")) == rows,
        message=f"the explorer showing {rows} rows of {name}",
    )


def assert_totals(page: Page, record: dict[str, Any]) -> None:
    totals = shown_totals(page)
    assert totals["total_params"] == grouped(record["total_params"])
    assert totals["trainable_params"] == grouped(record["trainable_params"])
    assert totals["non_trainable_params"] == grouped(record["non_trainable_params"])
    assert totals["total_macs"].endswith(f"({grouped(record['total_macs'])})")
    assert totals["input_shape"] == "×".join(map(str, record["input_shape"]))
    assert totals["param_bytes"] == f"{record['param_bytes'] / 2**20:.2f}"


# --- loading ------------------------------------------------------------------------------------------------


def test_first_load_stays_local_and_small(page: Page, netlog: NetLog, service: ServiceProcess) -> None:
    netlog.clear()
    page.load()
    page.wait(lambda _: len(page.all(".model-card")) == 2, message="two model cards")
    requests = netlog.network()
    assert not netlog.outside(service.url, attempted=True)  # not even one the CSP would have stopped
    assert 0 < len(requests) <= FIRST_LOAD_MAX_REQUESTS, [r.url for r in requests]
    assert not [r for r in requests if r.status is not None and r.status >= 400], [(r.url, r.status) for r in requests]


def test_models_list_matches_the_api(page: Page, service: ServiceProcess) -> None:
    page.load("models")
    listed = summary(service, "/models")["models"]
    page.wait(lambda _: len(page.all(".model-card[data-status=READY]")) == len(listed), message="every card ready")
    cards = {card.get_attribute("data-model"): card for card in page.all(".model-card")}
    assert set(cards) == {m["name"] for m in listed}
    for model in listed:
        text = cards[model["name"]].text
        assert "ready" in text
        assert grouped(model["params"]) in text
        assert model["provider"] in text
        for variant in model["versions"][0]["variants"]:
            assert f"{variant['test_top1']:.1f}%" in text


# --- explorer -----------------------------------------------------------------------------------------------


def test_explorer_shows_lenet5_as_the_api_does(page: Page, service: ServiceProcess) -> None:
    record = summary(service, "/models/lenet5/summary")
    page.load("explorer?model=lenet5")
    wait_for_summary(page, "lenet5", len(record["layers"]))
    assert_totals(page, record)
    names = [row.get_attribute("data-name") for row in page.all("#explorer-table tbody tr")]
    assert names == [layer["name"] for layer in record["layers"]]
    # The drawing: one box per row that has parameters or changes the shape; a box selects its rows.
    boxes = page.all("#explorer-drawing g.box[role=button]")
    assert 0 < len(boxes) <= len(record["layers"])
    conv = next(b for b in boxes if b.get_attribute("data-name") == record["layers"][0]["name"])
    conv.click()
    selected = [row.get_attribute("data-name") for row in page.all("#explorer-table tbody tr.selected")]
    assert selected == [record["layers"][0]["name"]]
    assert conv.get_attribute("aria-pressed") == "true"
    assert record["layers"][0]["name"] in page.text_of("#explorer-selection")
    # The same by keyboard: arrows move between the boxes, Enter selects.
    from selenium.webdriver.common.keys import Keys

    conv.send_keys(Keys.ARROW_RIGHT)
    focused = page.driver.switch_to.active_element
    assert focused.get_attribute("data-name") == boxes[1].get_attribute("data-name")
    focused.send_keys(Keys.ENTER)
    selected = [row.get_attribute("data-name") for row in page.all("#explorer-table tbody tr.selected")]
    assert selected == [boxes[1].get_attribute("data-name")]
    # The Keras-style text table, as GET /models/lenet5/summary?format=text gives it.
    page.css("#explorer-keras summary").click()
    page.wait(lambda _: f"Total params: {grouped(record['total_params'])}" in page.css("#explorer-keras-text").text)


def test_explorer_canonical_configuration_and_blocks(page: Page, service: ServiceProcess) -> None:
    canonical = summary(service, "/models/resnet18/summary", config="canonical")
    page.load("explorer?model=resnet18")
    page.wait(lambda _: "resnet18" in page.css("#explorer-heading").text)
    page.css("#explorer-config input[value=canonical]").click()
    wait_for_summary(page, "resnet18", len(canonical["layers"]))
    page.wait(lambda _: "224" in page.css("#explorer-heading").text, message="the canonical input size")
    assert_totals(page, canonical)
    depths = sorted(int(d) for d in canonical.get("depths", {}))
    assert depths, "resnet18's summary carries its blocks (depths)"
    blocks = summary(service, "/models/resnet18/summary", config="canonical", depth=depths[0])
    page.select("#explorer-depth", str(depths[0]))
    page.wait(
        lambda _: (
            [r.get_attribute("data-name") for r in page.all("#explorer-table tbody tr")]
            == [layer["name"] for layer in blocks["layers"]]
        ),
        message=f"the rows at depth {depths[0]}",
    )
    assert_totals(page, blocks)


def test_an_unserved_zoo_architecture_opens_in_the_explorer(page: Page, service: ServiceProcess) -> None:
    index = summary(service, "/zoo")["architectures"]
    served = {m["architecture"] for m in summary(service, "/models")["models"]}
    assert "resnet34" in {a["name"] for a in index} and "resnet34" not in served
    page.load("zoo")
    page.wait(lambda _: len(page.all("#zoo-table tbody tr")) == len(index), message="every architecture listed")
    page.css("#zoo-table a[href='#explorer?arch=resnet34']").click()
    record = summary(service, "/zoo/resnet34/summary")
    wait_for_summary(page, "resnet34", len(record["layers"]))
    assert_totals(page, record)
    depth = sorted(int(d) for d in record["depths"])[-1]
    blocks = summary(service, "/zoo/resnet34/summary", depth=depth)
    page.select("#explorer-depth", str(depth))
    page.wait(lambda _: len(page.all("#explorer-table tbody tr")) == len(blocks["layers"]), message="the blocks")


# --- playground -----------------------------------------------------------------------------------------------


def run_snippet(snippet: str, folder: Path, filename: str, image: bytes) -> str:
    (folder / filename).write_bytes(image)
    if snippet.startswith("curl"):
        if shutil.which("curl") is None:
            pytest.skip("no curl")
        command = ["bash", "-c", snippet]
    else:
        (folder / "snippet.py").write_text(snippet)
        command = [sys.executable, "snippet.py"]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_uploaded_image_is_classified_as_the_api_does(page: Page, service: ServiceProcess, tmp_path: Path) -> None:
    image = digit_png(3)
    path = tmp_path / "digit.png"
    path.write_bytes(image)
    page.load("playground?model=lenet5")
    page.wait(lambda _: page.css("#pg-model").get_attribute("value") == "lenet5")
    page.upload("#pg-file", str(path))
    label = page.text_of("#pg-top1")
    assert label == top1(service, "lenet5", image)
    assert "digit.png" in page.text_of("#pg-output")
    # The input as the model sees it: the 32x32 crop from POST /models/lenet5/preprocess.
    seen = page.visible("#pg-output img.pixelated")
    page.wait(lambda _: seen.get_property("naturalWidth") == 32, message="the preprocessed 32x32 image")
    assert float(page.css("[data-timing=roundtrip]").text.split()[0]) > 0
    # The three snippets reproduce the request: each prints the same top-1 label.
    for panel in page.all(".code-panel"):
        code = page.driver.execute_script("return arguments[0].querySelector('code').textContent", panel)
        output = run_snippet(code, tmp_path, "digit.png", image)
        if panel.get_attribute("data-snippet") == "curl":
            assert f'"label":"{label}"' in output.replace(" ", "")
        else:
            assert output.split()[0] == label, (panel.get_attribute("data-snippet"), output)


def test_a_drawn_digit_is_classified(page: Page, service: ServiceProcess) -> None:
    page.load("playground")
    page.wait(lambda _: page.css("#pg-model").get_attribute("value") == "lenet5", message="lenet5 preselected")
    page.draw("#pg-pad", [[(-50, -70), (50, -70), (-10, 80)]])  # a 7
    label = page.text_of("#pg-top1")
    drawn = page.driver.execute_script("return document.getElementById('pg-pad').toDataURL('image/png')")
    png = base64.b64decode(drawn.partition(",")[2])
    assert Image.open(io.BytesIO(png)).convert("L").getextrema() == (0, 255), "white strokes on black"
    assert label == top1(service, "lenet5", png, "drawing.png")
    assert re.search(r"\d+\.\d%", page.text_of("ol.topk"))


def test_errors_show_the_api_message(page: Page, service: ServiceProcess, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    huge = tmp_path / "huge.png"
    Image.new("L", (7000, 6000)).save(huge)  # 42 million pixels: over CNNSERVE_MAX_IMAGE_PIXELS' 40 million
    page.load("playground?model=lenet5")
    page.wait(lambda _: page.css("#pg-model").get_attribute("value") == "lenet5")
    for path, status in ((text, 415), (huge, 413)):
        with service.client() as client:
            expected = client.post("/models/lenet5/predict", files={"file": (path.name, path.read_bytes())}).json()
        assert expected["status"] == status
        page.upload("#pg-file", str(path))
        page.wait(lambda _, e=expected: e["error"] in page.css("#pg-error").text, message=f"{path.name}'s error")
        assert str(status) in page.text_of("#pg-error")
    # The next good image is classified as usual.
    good = tmp_path / "good.png"
    good.write_bytes(digit_png(5))
    page.upload("#pg-file", str(good))
    page.wait(lambda _: not page.css("#pg-error").is_displayed() and page.all("#pg-top1"), message="a prediction")


DROP_AND_PASTE = """
const [selector, kind, name] = arguments;
const canvas = document.createElement("canvas");
canvas.width = canvas.height = 40;
const ctx = canvas.getContext("2d");
ctx.fillRect(0, 0, 40, 40);
ctx.fillStyle = "#fff";
ctx.fillRect(18, 6, 5, 28);  // a 1
canvas.toBlob((blob) => {
  const data = new DataTransfer();
  data.items.add(new File([blob], name, {type: "image/png"}));
  const target = document.querySelector(selector);
  target.dispatchEvent(kind === "drop" ? new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true})
                                       : new ClipboardEvent("paste", {clipboardData: data, bubbles: true}));
}, "image/png");
"""


def test_dropped_and_pasted_images_are_classified(page: Page) -> None:
    page.load("playground?model=lenet5")
    page.wait(lambda _: page.css("#pg-model").get_attribute("value") == "lenet5")
    page.driver.execute_script(DROP_AND_PASTE, "#pg-drop", "drop", "dropped.png")
    page.wait(lambda _: "You gave: dropped.png" in page.css("#pg-output").text, message="the dropped image")
    page.driver.execute_script(DROP_AND_PASTE, "body", "paste", "image.png")
    page.wait(lambda _: "You gave: pasted.png" in page.css("#pg-output").text, message="the pasted image")
    assert page.text_of("#pg-top1")


def test_samples_are_offered_and_classified(page: Page, service: ServiceProcess) -> None:
    samples = summary(service, "/models/lenet5/samples")
    listed = samples["samples"] if isinstance(samples, dict) else samples
    assert listed, "lenet5 carries sample images"
    page.load("playground?model=lenet5")
    page.wait(lambda _: len(page.all("#pg-samples button.sample")) == len(listed), message="the sample buttons")
    button = page.all("#pg-samples button.sample")[0]
    name = button.get_attribute("data-file")
    button.click()
    page.wait(lambda _: name in page.css("#pg-output").text, message="the sample's prediction")


# --- compare ---------------------------------------------------------------------------------------------------


def test_compare_runs_every_ready_model(page: Page, service: ServiceProcess, tmp_path: Path) -> None:
    image = digit_png(8)
    path = tmp_path / "eight.png"
    path.write_bytes(image)
    models = [m["name"] for m in summary(service, "/models")["models"] if m["status"] == "READY"]
    page.load("compare")
    page.upload("#cmp-file", str(path))
    page.wait(lambda _: len(page.all("#compare-table td.top1")) == len(models), message="a top-1 for every model")
    shown = {
        row.get_attribute("data-model"): row.find_element("css selector", "td.top1").text
        for row in page.all("#compare-table tbody tr")
    }
    assert shown == {name: top1(service, name, image, "eight.png") for name in models}
    points = page.all("#compare-chart svg g.point title")
    assert len(points) >= len(models)  # one marker per model and published variant


# --- the API docs, accessibility, small screens --------------------------------------------------------------


def test_api_docs_load_from_this_server(page: Page, netlog: NetLog) -> None:
    netlog.clear()
    page.driver.get(f"{page.url}/docs")
    page.visible(".swagger-ui .info .title")
    assert not netlog.outside(page.url, attempted=True)
    page.driver.get(f"{page.url}/redoc")
    page.wait(lambda _: "cnnserve" in page.driver.find_element("css selector", "body").text, message="ReDoc's page")
    page.wait(lambda _: netlog.outside(page.url, attempted=True), timeout=10, message="ReDoc's logo request")
    # ReDoc's side menu links an image on cdn.redoc.ly (hard-coded in its bundle): /redoc's CSP stops it.
    blocked = {r.url: r.blocked for r in netlog.network() if not r.url.startswith(page.url)}
    assert blocked == {"https://cdn.redoc.ly/redoc/logo-mini.svg": "csp"}


@pytest.mark.parametrize("view", ["models", "explorer?model=resnet18", "zoo", "playground", "compare", "api"])
def test_no_serious_accessibility_violation(page: Page, view: str, tmp_path: Path) -> None:
    page.load(view)
    page.visible(f"#view-{view.split('?')[0]} h1")
    if view.startswith("explorer"):
        page.wait(lambda _: page.all("#explorer-table tbody tr"))
    if view in ("playground", "compare"):
        image = tmp_path / "digit.png"
        image.write_bytes(digit_png(1))
        page.upload("#pg-file" if view == "playground" else "#cmp-file", str(image))
        page.visible("#pg-top1" if view == "playground" else "#compare-table td.top1")
    violations = axe_violations(page.driver)
    assert not violations, describe_violations(violations)


@pytest.mark.parametrize("view", ["models", "explorer?model=lenet5", "zoo", "playground", "compare", "api"])
def test_fits_a_phone_screen(page: Page, view: str) -> None:
    emulate_width(page.driver, 375)
    try:
        page.load(view)
        page.visible(f"#view-{view.split('?')[0]} h1")
        if view.startswith("explorer"):
            page.wait(lambda _: page.all("#explorer-table tbody tr"))
        width = page.driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert width == [375, 375], f"{view} is {width[0]} px wide on a {width[1]} px screen"
    finally:
        emulate_width(page.driver, None)
