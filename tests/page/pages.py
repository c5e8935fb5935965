"""What the page tests do with the page: go to a view, wait for what it shows, read it, draw on it."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 60.0  # generous: two cores shared with the server and, under make test, other tests


class Page:
    def __init__(self, driver: Any, url: str) -> None:
        self.driver = driver
        self.url = url

    def load(self, view: str = "") -> Page:
        """A full load of the page (a new document), showing ``view`` (e.g. "explorer?model=lenet5")."""
        self.driver.get("about:blank")  # else a URL that differs only in its hash would not reload the page
        self.driver.get(f"{self.url}/#{view}" if view else f"{self.url}/")
        self.wait(lambda d: d.execute_script("return document.readyState") == "complete")
        return self

    def go(self, view: str) -> Page:
        """Show another view in the same document, as a click on a link does."""
        self.driver.execute_script("location.hash = arguments[0]", view)
        return self

    def wait(self, condition: Callable[[Any], Any], timeout: float = WAIT_S, message: str = "") -> Any:
        def safe(driver: Any) -> Any:
            try:
                return condition(driver)
            except StaleElementReferenceException:
                return False

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(safe)
        except TimeoutException:
            raise AssertionError(f"timed out waiting: {message or condition}\n{self.problems()}") from None

    def problems(self) -> str:
        """The page's own error messages and console errors, for failure reports."""
        alerts = [e.text for e in self.all("[role=alert]") if e.is_displayed() and e.text]
        console = [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]
        return f"alerts on the page: {alerts}\nconsole errors: {console}"

    def css(self, selector: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def visible(self, selector: str, timeout: float = WAIT_S) -> WebElement:
        def shown(_: Any) -> WebElement | bool:
            found = [e for e in self.all(selector) if e.is_displayed()]
            return found[0] if found else False

        return self.wait(shown, timeout, f"{selector} to be visible")

    def text_of(self, selector: str) -> str:
        """The text of the first visible match, once it has some (the page may redraw it meanwhile)."""

        def text(_: Any) -> str | bool:
            found = [e.text.strip() for e in self.all(selector) if e.is_displayed()]
            return found[0] if found and found[0] else False

        return self.wait(text, message=f"text in {selector}")

    def select(self, selector: str, value: str) -> None:
        """Choose an option of a <select> by value and tell the page (a change event), as a user does."""
        element = self.visible(selector)
        self.wait(
            lambda _: element.find_elements(By.CSS_SELECTOR, f"option[value='{value}']"),
            message=f"{value} in {selector}",
        )
        self.driver.execute_script(
            "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change', {bubbles: true}))",
            element,
            value,
        )

    def upload(self, selector: str, path: str) -> None:
        self.css(selector).send_keys(path)

    def draw(self, selector: str, strokes: list[list[tuple[int, int]]]) -> None:
        """Strokes of (x, y) offsets from the element's centre, with the mouse (pointer events)."""
        element = self.visible(selector)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        for stroke in strokes:
            actions = ActionChains(self.driver, duration=20)
            x0, y0 = stroke[0]
            actions.move_to_element_with_offset(element, x0, y0).click_and_hold()
            for (xa, ya), (xb, yb) in itertools.pairwise(stroke):
                actions.move_by_offset(xb - xa, yb - ya)
            actions.release().perform()
