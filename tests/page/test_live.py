"""The Models view while `make serve` still builds: an empty repository says so, and a model published
later shows up ready without a reload (the page polls GET /models, the service polls the repository)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .server import ServiceProcess

if TYPE_CHECKING:
    from .pages import Page

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("page")]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    repository = tmp_path_factory.mktemp("growing") / "model_repository"
    repository.mkdir()
    process = ServiceProcess(repository, CNNSERVE_POLL_INTERVAL_S="0.5").start(settled=False)
    yield process
    process.stop()


def test_a_model_published_later_appears_ready(page: Page, service: ServiceProcess, quick_repository: Path) -> None:
    page.load()
    page.wait(lambda _: "No model is ready yet" in page.css("#models-list").text, message="the empty state")
    page.go("playground")
    page.wait(lambda _: "No model is ready yet" in page.css("#playground-status").text, message="the playground's")
    # Published the way export does it: the whole folder appears at once (a rename).
    staging = service.repository.parent / "staging-lenet5"
    shutil.copytree(quick_repository / "lenet5", staging)
    os.rename(staging, service.repository / "lenet5")
    page.wait(lambda _: page.css("#pg-model").get_attribute("value") == "lenet5", message="lenet5 in the playground")
    page.go("models")
    page.wait(lambda _: page.all(".model-card[data-model=lenet5][data-status=READY]"), message="lenet5 ready")
