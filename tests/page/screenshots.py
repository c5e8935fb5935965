"""``python -m tests.page.screenshots`` (``make screenshots``): docs/img/page-*.png from a live service.

Serves ``--repository``, by default ``model_repository`` when ``make serve`` has built its trained
LeNet-5 and ResNet-18 there, else the tests' quick repository built in seconds in a temporary folder
(then every picture says across its top that the answers are a quick build's, not a trained model's).
It starts ``python -m service`` on it, and photographs each view in headless
Chromium at 1280 px (the Explorer's feature maps and the Playground's occlusion map too), and the
Playground at 375 px. It also prints what the page costs the server (requests and bytes, from the
browser's performance log): a first load, and each view of what the network sees. docs/service.md
quotes them.
"""

from __future__ import annotations

import argparse
import base64
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from .browser import NetLog, Request, chrome, emulate_width
from .pages import Page
from .server import ROOT, ServiceProcess

OUT = ROOT / "docs" / "img"
DESKTOP = 1280
PHONE = 375
MAX_HEIGHT = 1700  # px of page per picture: long tables are cut, the top tells the story
SEVEN = [[(-55, -75), (55, -75), (-5, 85)]]  # tests/page/test_handwriting.py's 7: a trained LeNet-5 reads it


QUICK_NOTE = "Quick-build models (a moment of training, for tests): their answers are not a trained model's"
SHOWN = ("lenet5", "resnet18")  # the models the pictures use


def trained(repository: Path) -> bool:
    """Whether ``repository`` holds fully trained (not --quick) builds of every model the pictures show."""
    from repository import Repository

    repo = Repository(repository)
    try:
        return all(not repo.load_card(name).quick for name in SHOWN)
    except (OSError, ValueError):
        return False


def stamp(image: Image.Image, note: str) -> Image.Image:
    """``note`` in a band across the top of ``image``, so that a picture cannot pass for what it is not."""
    from PIL import ImageDraw

    out = image.copy()
    draw = ImageDraw.Draw(out)
    draw.rectangle((0, 0, out.width, 28), fill=(178, 107, 0))
    draw.text((10, 8), note, fill=(255, 255, 255))
    return out


def capture(
    page: Page, path: Path, width: int, max_height: int = MAX_HEIGHT, top: int = 0, note: str | None = None
) -> None:
    """The page from ``top``, ``width`` wide and as tall as its content (at most ``max_height``), as a small PNG."""
    height = min(max_height, page.driver.execute_script("return document.documentElement.scrollHeight") - top)
    shot = page.driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": top, "width": width, "height": height, "scale": 1},
        },
    )
    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    if note:
        image = stamp(image, note)
    # 256 colours are plenty for a page of flat colours and text, and a third of the bytes.
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"{path.name}: {width}x{height}, {path.stat().st_size:,} bytes")


def settle(page: Page) -> None:
    """Let pending requests land and images decode before the picture."""
    time.sleep(0.6)
    page.wait(lambda d: d.execute_script("return [...document.images].every(i => i.complete)"))


def models(page: Page) -> None:
    page.load("models")
    page.wait(lambda _: page.all(".model-card[data-status=READY]"))


def explorer(page: Page) -> None:
    page.load("explorer?model=resnet18&config=canonical&depth=2")
    page.wait(lambda _: page.all("#explorer-table tbody tr"))
    boxes = page.all("#explorer-drawing g.box[role=button]")
    boxes[len(boxes) // 2].click()  # a block in the middle, its row highlighted


def zoo(page: Page) -> None:
    page.load("zoo")
    page.wait(lambda _: len(page.all("#zoo-table tbody tr")) > 10)


def playground(page: Page) -> None:
    page.load("playground?model=lenet5")
    page.wait(lambda _: page.css("#pg-model").get_attribute("value") == "lenet5")
    page.draw("#pg-pad", SEVEN)
    page.wait(lambda _: page.all("#pg-output img.pixelated") and page.all(".code-panel"))


def maps(page: Page) -> None:
    """The drawn 7 through LeNet-5's first convolution: its six feature maps and, beside them, its filters."""
    playground(page)
    page.go("explorer?model=lenet5")
    page.wait(lambda _: page.all("#explorer-drawing g.box[data-call='features.0']"))
    page.css("#explorer-drawing g.box[data-call='features.0']").click()
    page.wait(lambda _: page.all("#explorer-maps ul.channels img") and page.all("#explorer-maps ul.filters img"))
    page.driver.execute_script("window.scrollTo(0, 0)")


def occlusion(page: Page) -> None:
    """The drawn 7's occlusion map over the input LeNet-5 sees, one cell focused (its number read out)."""
    playground(page)
    time.sleep(1.0)  # the answer settles before the button is pressed
    page.visible("#occ-run").click()
    page.wait(lambda _: page.all("#pg-occlusion svg.occ-map rect.cell"))
    page.driver.execute_script("document.querySelector('#pg-occlusion svg.occ-map').focus()")


def compare(page: Page) -> None:
    playground(page)
    page.go("compare")
    page.wait(lambda _: page.all("#compare-table td.top1") and "Done" in page.css("#compare-status").text)


def api(page: Page) -> None:
    page.load("api")
    page.visible("#view-api h1")


VIEWS: dict[str, Callable[[Page], None]] = {
    "models": models,
    "explorer": explorer,
    "maps": maps,
    "zoo": zoo,
    "playground": playground,
    "occlusion": occlusion,
    "compare": compare,
    "api": api,
}
# Pictures of a part of a long view: from the top of this element (less a margin), this tall.
REGIONS = {"occlusion": ("#pg-occlusion", 1100)}


def region(page: Page, name: str) -> tuple[int, int]:
    """(max_height, top) of the picture of view ``name``: the whole page from the top unless REGIONS says."""
    if name not in REGIONS:
        return MAX_HEIGHT, 0
    selector, height = REGIONS[name]
    top = page.driver.execute_script(
        "return arguments[0].getBoundingClientRect().top + window.scrollY", page.css(selector)
    )
    return height, max(0, int(top) - 60)


def first_load(url: str) -> dict[str, Any]:
    """Requests and bytes of a first load of ``/`` (a new browser, nothing cached) until the models show."""
    with chrome(DESKTOP, 900) as driver:
        page = Page(driver, url)
        log = NetLog(driver)
        driver.get("about:blank")
        log.clear()
        page.load()
        page.wait(lambda _: page.all(".model-card"))
        time.sleep(1.0)  # anything the first view starts after its cards
        requests = log.network()
    return {
        "requests": len(requests),
        "bytes": sum(r.encoded_bytes for r in requests),
        "files": sorted((r.url.removeprefix(url), r.encoded_bytes) for r in requests),
    }


VIEW_COSTS = {"lenet5": ("", "features.0", "features.3"), "resnet18": ("2", "conv1", "layer1.0")}  # depth, layers


def shown(page: Page, layer: str) -> bool:
    status = page.driver.execute_script("return document.querySelector('#explorer-maps [role=status]').textContent")
    return status.startswith(f"{layer}:")


def view_costs(url: str) -> list[tuple[str, list[Request]]]:
    """What each view of what the network sees asks of the server: a layer selected in the Explorer (a model's
    first selection also fetches its filters, and its first sample when the Playground has no image), the
    occlusion map of a sample with the API's defaults."""
    costs = []
    with chrome(DESKTOP, 900) as driver:
        page = Page(driver, url)
        log = NetLog(driver)
        for model, (depth, *layers) in VIEW_COSTS.items():
            page.load(f"explorer?model={model}&depth={depth}" if depth else f"explorer?model={model}")
            page.wait(lambda _: page.all("#explorer-table tbody tr"))
            for layer in layers:
                log.clear()
                page.css(f"#explorer-table tr[data-call='{layer}'] button.row-select").click()
                page.wait(lambda _, layer=layer: shown(page, layer), message=f"{model}'s {layer}")
                time.sleep(0.5)  # the filters, asked after the maps
                costs.append((f"{model}: select {layer}", log.network()))
            page.load(f"playground?model={model}")
            page.visible("#pg-samples button.sample").click()
            page.visible("#occ-run")
            time.sleep(0.5)
            log.clear()
            page.css("#occ-run").click()
            page.wait(lambda _: page.all("#pg-occlusion svg.occ-map rect.cell"), message=f"{model}'s occlusion")
            costs.append((f"{model}: occlusion map", log.network()))
    return costs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.page.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repository",
        type=Path,
        help="a built repository (default: model_repository when it holds trained models, else a quick build)",
    )
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the PNGs (default docs/img)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cnnserve-screenshots-") as tmp:
        repository = args.repository
        if repository is None and trained(ROOT / "model_repository"):
            repository = ROOT / "model_repository"
        if repository is None:
            from tests.conftest import build_quick_repository

            print("model_repository has no trained lenet5 and resnet18: building the quick repository…")
            repository = build_quick_repository(Path(tmp))
        note = None if trained(repository) else QUICK_NOTE
        print(f"serving {repository}" + (" (quick builds: every picture says so)" if note else " (trained models)"))
        service = ServiceProcess(repository).start()
        try:
            cost = first_load(service.url)
            costs = view_costs(service.url)
            args.out.mkdir(parents=True, exist_ok=True)
            with chrome(DESKTOP, 900) as driver:
                page = Page(driver, service.url)
                for name, prepare in VIEWS.items():
                    prepare(page)
                    settle(page)
                    capture(page, args.out / f"page-{name}.png", DESKTOP, *region(page, name), note=note)
            with chrome(DESKTOP, 900) as driver:
                emulate_width(driver, PHONE)
                page = Page(driver, service.url)
                playground(page)
                settle(page)
                capture(page, args.out / "page-phone.png", PHONE, max_height=2600, note=note)
        finally:
            service.stop()
    print(f"first load of /: {cost['requests']} requests, {cost['bytes']:,} bytes")
    for path, size in cost["files"]:
        print(f"  {size:>8,}  {path}")
    for what, requests in costs:
        print(f"{what}: {len(requests)} requests, {sum(r.encoded_bytes for r in requests):,} bytes")
        for r in requests:
            print(f"  {r.encoded_bytes:>8,}  {r.method} {r.url.removeprefix(service.url)}")


if __name__ == "__main__":
    main()
