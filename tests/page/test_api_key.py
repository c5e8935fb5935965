"""The page on a server with CNNSERVE_API_KEY: it asks for the key once, keeps it for the tab only
(sessionStorage) and sends it as X-API-Key on every later call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .browser import NetLog
from .server import ServiceProcess

if TYPE_CHECKING:
    from .pages import Page

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("page")]

KEY = "page-test-key-7f3a"


@pytest.fixture(scope="module")
def service(quick_repository: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(quick_repository, CNNSERVE_API_KEY=KEY).start()
    yield process
    process.stop()


def give_key(page: Page, key: str) -> None:
    field = page.visible("#key-input")
    field.clear()
    field.send_keys(key)
    page.css("#key-form button[value=ok]").click()


def stored_key(page: Page) -> str | None:
    return page.driver.execute_script("return sessionStorage.getItem('cnnserve.apiKey')")


def test_the_page_asks_for_the_key_and_sends_it(page: Page, netlog: NetLog) -> None:
    page.load()
    give_key(page, "not-the-key")
    page.wait(lambda _: page.css("#key-error").is_displayed(), message="the refused key's message")
    give_key(page, KEY)
    page.wait(lambda _: len(page.all(".model-card[data-status=READY]")) == 2, message="the models, with the key")
    assert stored_key(page) == KEY
    assert page.driver.execute_script("return localStorage.length") == 0  # this tab only
    assert page.css("#key-status").is_displayed()
    calls = [r for r in netlog.network() if r.url.endswith("/models")]
    keys = [{k.lower(): v for k, v in r.headers.items()}.get("x-api-key") for r in calls]
    assert keys[0] is None and keys[-1] == KEY, keys
    # Later calls carry the key without asking again: the explorer's summary, a prediction.
    page.go("explorer?model=lenet5")
    page.wait(lambda _: page.all("#explorer-table tbody tr"), message="the summary, with the key")
    assert not page.css("#key-dialog").is_displayed()
    summaries = [r for r in netlog.network() if "/summary" in r.url]
    assert summaries and all({k.lower(): v for k, v in r.headers.items()}.get("x-api-key") == KEY for r in summaries)


def test_forgetting_the_key_asks_again(page: Page) -> None:
    page.load()
    # With the key of the test before in this tab the models show at once; in a new browser it is asked for.
    page.wait(lambda _: page.all(".model-card") or page.css("#key-dialog").is_displayed(), message="models or key")
    if page.css("#key-dialog").is_displayed():
        give_key(page, KEY)
    page.wait(lambda _: page.all(".model-card"), message="the models")
    page.css("#key-forget").click()
    assert stored_key(page) is None
    page.visible("#key-input")
    page.css("#key-form button[value=cancel]").click()
    page.wait(lambda _: "needs an API key" in page.css("#models-status").text, message="the status line")
    page.css("#models-status button").click()
    give_key(page, KEY)
    page.wait(lambda _: stored_key(page) == KEY and not page.css("#key-dialog").is_displayed())
