"""Fixtures of the page tests: one browser and one service (a subprocess) per test process.

The browser and the service on the quick repository live for the whole session: however the tests are
spread over pytest-xdist's workers, each worker starts them at most once. The modules that need a service
of their own (an API key, a growing repository) override ``service`` for themselves.

Without Chromium the tests skip with the Debian packages to install, or fail under ``CI=true``. Around
each test the browser's request log is emptied and then checked: no request may leave the service's
origin on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .browser import NetLog, chrome, require_browser
from .server import ServiceProcess

if TYPE_CHECKING:
    from .pages import Page


def pytest_runtest_setup(item: pytest.Item) -> None:
    """No browser: skip (or fail under CI=true) before any fixture builds a repository or starts a server."""
    if "page" in getattr(item, "fixturenames", ()):
        require_browser()


@pytest.fixture(scope="session")
def service(quick_repository: Path) -> Iterator[ServiceProcess]:
    """The service on the tests' quick repository (lenet5 and resnet18), every model settled."""
    process = ServiceProcess(quick_repository).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with chrome() as driver:
        yield driver


@pytest.fixture(scope="session")
def netlog(browser: Any) -> NetLog:
    browser.get("about:blank")  # away from the browser's start page before the log starts
    log = NetLog(browser)
    log.clear()
    return log


@pytest.fixture
def page(browser: Any, service: ServiceProcess, netlog: NetLog) -> Page:
    from .pages import Page

    return Page(browser, service.url)


@pytest.fixture(autouse=True)
def _requests_stay_local(request: pytest.FixtureRequest) -> Iterator[None]:
    if "page" not in request.fixturenames:
        yield
        return
    log: NetLog = request.getfixturevalue("netlog")
    log.clear()
    yield
    origin = request.getfixturevalue("service").url
    outside = log.outside(origin)
    assert not outside, f"the page made requests outside {origin}: {outside}"
