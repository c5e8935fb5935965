"""A person drawing on the page's pad, in Chromium with the mouse: a trained LeNet-5 reads the digits.

LeNet-5 is trained here with its full recipe (seconds: it is the page's default model, as ``make serve``
builds it), exported and served. The digits are drawn as pointer strokes at the pad's size, a few ways
each, large and small, off centre and slanted: what the handwriting check set measures in ``make bench``,
here through the whole page. An empty pad is never sent, and an answer below 60% says it is unsure.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from .browser import NetLog
from .pages import Page
from .server import ServiceProcess

# (digit, strokes): each stroke a list of (x, y) offsets from the pad's centre, in CSS pixels.
DRAWN: list[tuple[str, list[list[tuple[int, int]]]]] = [
    ("0", [[(0, -80), (-40, -60), (-50, 0), (-40, 60), (0, 80), (40, 60), (50, 0), (40, -60), (0, -80)]]),
    ("1", [[(-25, -55), (5, -85), (5, 85)]]),
    ("2", [[(-45, -45), (-20, -80), (25, -80), (45, -45), (30, -5), (-50, 80), (55, 80)]]),
    ("3", [[(-40, -70), (35, -80), (5, -10), (45, 30), (30, 75), (-45, 75)]]),
    ("4", [[(25, 85), (25, -85), (-50, 30), (55, 30)]]),
    ("5", [[(45, -80), (-35, -80), (-40, -10), (30, -15), (45, 35), (25, 75), (-45, 75)]]),
    ("6", [[(35, -85), (-25, -30), (-40, 40), (-15, 80), (25, 75), (35, 30), (0, 5), (-40, 35)]]),
    ("7", [[(-55, -75), (55, -75), (-5, 85)]]),
    ("8", [[(35, -65), (0, -85), (-35, -60), (35, 30), (0, 80), (-40, 35), (35, -55)]]),
    ("9", [[(40, -40), (0, -80), (-40, -45), (0, -10), (40, -45), (35, 85)]]),
]
SMALL_SEVEN = [[(20, -10), (70, -10), (40, 60)]]  # a third of the size, low and to the right


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    from export.build import build

    from ..conftest import quick_options

    root = tmp_path_factory.mktemp("trained-lenet5")
    options = quick_options(root / "model_repository", root / "checkpoints", models=["lenet5"], quick=False)
    failed = [f"{r.name}: {r.message}" for r in build(options) if not r.ok]
    assert not failed, failed
    process = ServiceProcess(root / "model_repository").start()
    yield process
    process.stop()


def _answer(page: Page, strokes: list[list[tuple[int, int]]]) -> str:
    page.visible("#pg-clear").click()
    page.draw("#pg-pad", strokes)
    page.wait(lambda _: page.all("#pg-output img.pixelated"), message="the answer and the picture the model sees")
    return page.text_of("#pg-top1")


def test_drawn_digits_are_read_right(page: Page) -> None:
    page.load("playground?model=lenet5")
    page.wait(lambda _: page.css("#pg-model").get_attribute("value") == "lenet5")
    answers = {digit: _answer(page, strokes) for digit, strokes in DRAWN}
    right = [digit for digit, answer in answers.items() if answer == digit]
    assert len(right) >= 9, answers  # a person would accept one slip in ten, no more
    assert answers["7"] == "7"  # the README's example
    assert _answer(page, SMALL_SEVEN) == "7"  # small and off centre: the ink is found and fitted
    caption = page.text_of("#pg-output .seen")
    assert "digits data set" in caption and "8×8" in caption  # the steps are shown, with what they made


def test_an_empty_pad_is_never_sent(page: Page, netlog: NetLog) -> None:
    page.load("playground?model=lenet5")
    page.wait(lambda _: page.css("#pg-model").get_attribute("value") == "lenet5")
    _answer(page, DRAWN[7][1])
    netlog.clear()
    page.visible("#pg-clear").click()
    page.wait(lambda _: "pad is empty" in page.text_of("#pg-output"))
    assert not [r.url for r in netlog.network() if "/predict" in r.url]


def test_a_low_top_probability_is_said_plainly(page: Page) -> None:
    """A scribble: whatever the model's top class, below 60% the page says it is unsure instead of announcing it."""
    page.load("playground?model=lenet5")
    page.wait(lambda _: page.css("#pg-model").get_attribute("value") == "lenet5")
    _answer(page, [[(-70, -70), (70, 70)], [(-70, 70), (70, -70)], [(-80, 0), (80, 0)], [(0, -80), (0, 80)]])
    verdict = page.css("#pg-output .verdict")
    top = float(re.search(r"(\d+(?:\.\d+)?)%", page.text_of("ol.topk li.first")).group(1))
    unsure = "unsure" in verdict.get_attribute("class")
    assert unsure == (top < 60.0), (top, verdict.text)
    if unsure:
        assert verdict.text.startswith("Not sure")
