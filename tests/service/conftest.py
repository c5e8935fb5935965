"""Fixtures of the service tests: a small real repository and real HTTP servers on loopback.

``repository`` is the one the suite serves: the session's ``quick_repository`` (lenet5 and
resnet18 built by ``python -m export build --quick``). ``tiny_repository`` is written here with
``export.repository`` (``repo_builder``): random weights, one grey and one RGB model; the
hot-reload and corruption tests copy it and add versions to it.

``server`` runs uvicorn in a background thread on 127.0.0.1 and a free port, as
``python -m service`` does (same app factory, same settings class); see ``live``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from repository import ModelCard, Repository
from service.settings import Settings

from .live import LiveServer, make_settings
from .repo_builder import build_repository


@pytest.fixture(scope="session")
def tiny_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lenet5 (grey, 32x32) and lenet5-rgb (RGB, resize 36, crop 32), random weights, fp32 + int8. Read-only."""
    return build_repository(tmp_path_factory.mktemp("tiny") / "model_repository")


@pytest.fixture(scope="session")
def repository(quick_repository: Path) -> Path:
    return quick_repository


@pytest.fixture(scope="session")
def cards(repository: Path) -> dict[str, ModelCard]:
    repo = Repository(repository)
    return {name: repo.load_card(name) for name in repo.names()}


@pytest.fixture(scope="session")
def grey_model(cards: dict[str, ModelCard]) -> str:
    return next(name for name, card in cards.items() if card.input.color_mode == "L")


@pytest.fixture(scope="session")
def rgb_model(cards: dict[str, ModelCard]) -> str:
    return next(name for name, card in cards.items() if card.input.color_mode == "RGB")


@pytest.fixture(scope="session")
def server(repository: Path) -> Iterator[LiveServer]:
    """The shared server: default settings (CUDA then CPU requested), no polling."""
    live = LiveServer(make_settings(repository)).start()
    yield live
    live.stop()


@pytest.fixture(scope="session")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture
def start_server() -> Iterator[Callable[..., LiveServer]]:
    """Start servers with their own settings; they stop at the end of the test."""
    started: list[LiveServer] = []

    def start(settings: Settings, *, ready: bool = True) -> LiveServer:
        live = LiveServer(settings).start(ready=ready)
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()
