"""Headless Chromium for the page tests and the screenshots: Debian's ``chromium`` and ``chromium-driver``
driven by Selenium, never a downloaded browser.

Every request the page makes is read from Chrome's performance log (the DevTools ``Network`` events), so
the tests can prove that nothing leaves 127.0.0.1 and the screenshots command can say what a first load
costs. axe-core (vendored, tests/page/vendor) is injected with ``execute_script`` for the accessibility check.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
BROWSERS = ("chromium", "chromium-browser")
PACKAGES = "chromium chromium-driver"
NETWORK_SCHEMES = ("http", "https", "ws", "wss", "ftp")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # No traffic of the browser's own (updates, sync, field trials): the only requests are the page's.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


def find_browser() -> tuple[str, str] | str:
    """(chromium, chromedriver) paths, or why they cannot be used."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    browser = next((path for path in map(shutil.which, BROWSERS) if path), None)
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    return f"headless Chromium is not installed: apt-get install {PACKAGES} (Debian's packages)"


def require_browser() -> tuple[str, str]:
    """The browser's paths; skips the test without one, or fails it under CI=true (CI must run it)."""
    found = find_browser()
    if isinstance(found, tuple):
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {found}", pytrace=False)
    pytest.skip(found)


@contextmanager
def chrome(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A fresh headless Chromium (its own profile folder), with the performance log on."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = require_browser()
    with tempfile.TemporaryDirectory(prefix="cnnserve-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def emulate_width(driver: Any, width: int | None, height: int = 812) -> None:
    """Lay the page out ``width`` CSS pixels wide, as a phone would (a window cannot be made that narrow:
    Chrome keeps windows at least about 500 px wide); ``None`` goes back to the window's own size."""
    if width is None:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    else:
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


@dataclass
class Request:
    url: str
    method: str
    headers: dict[str, str]
    status: int | None = None
    encoded_bytes: int = 0
    from_cache: bool = False
    blocked: str | None = None  # why the browser stopped it before it went out ("csp", ...)


@dataclass
class NetLog:
    """Every request of the page, read from the performance log (reading it empties the browser's buffer)."""

    driver: Any
    requests: dict[str, Request] = field(default_factory=dict)

    def drain(self) -> list[Request]:
        new: list[Request] = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            method, params = message.get("method", ""), message.get("params", {})
            rid = params.get("requestId")
            if method == "Network.requestWillBeSent":
                request = params["request"]
                self.requests[rid] = Request(request["url"], request["method"], request.get("headers", {}))
                new.append(self.requests[rid])
            elif method == "Network.responseReceived" and rid in self.requests:
                self.requests[rid].status = params["response"]["status"]
                self.requests[rid].from_cache = bool(params["response"].get("fromDiskCache"))
            elif method == "Network.loadingFinished" and rid in self.requests:
                self.requests[rid].encoded_bytes = int(params.get("encodedDataLength", 0))
            elif method == "Network.loadingFailed" and rid in self.requests:
                self.requests[rid].blocked = params.get("blockedReason")
        return new

    def clear(self) -> None:
        self.drain()
        self.requests.clear()

    def network(self) -> list[Request]:
        """Requests for the network: not data:, blob: or the browser's own chrome:// pages."""
        self.drain()
        return [r for r in self.requests.values() if urlsplit(r.url).scheme in NETWORK_SCHEMES]

    def outside(self, origin: str, *, attempted: bool = False) -> list[str]:
        """URLs that went anywhere but ``origin``; with ``attempted``, also those the browser blocked (the CSP)."""
        allowed = urlsplit(origin)
        return [
            r.url
            for r in self.network()
            if (urlsplit(r.url).scheme, urlsplit(r.url).netloc) != (allowed.scheme, allowed.netloc)
            and (attempted or r.blocked is None)
        ]


def axe_violations(driver: Any, *, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """axe-core's violations of the page as it is now, of the given impacts."""
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(AXE.read_text(encoding="utf-8"))
    violations = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations), e => done([{id: 'axe-error',"
        " impact: 'critical', description: String(e), nodes: []}]));"
    )
    return [v for v in violations if v.get("impact") in impacts]


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        targets = [", ".join(node.get("target", [])) for node in v.get("nodes", [])[:5]]
        lines.append(f"{v['id']} ({v.get('impact')}): {v.get('description')} at {targets}")
    return "\n".join(lines)
