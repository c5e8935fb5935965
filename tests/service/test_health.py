"""Liveness always; readiness once a model serves. A server started on an empty repository
(``make serve`` while the build runs) goes ready when the first model is published."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from repository import CARD_FILE

from .live import make_settings

pytestmark = pytest.mark.xdist_group("service")


def test_probes(client: httpx.Client, cards) -> None:
    assert client.get("/healthz").json() == {"live": True}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"ready": True, "models": dict.fromkeys(cards, "READY")}


def publish(source: Path, target: Path) -> None:
    """Copy a model folder as export publishes one: files first, the card last (atomically)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(CARD_FILE))
    shutil.copy(source / CARD_FILE, target / f".{CARD_FILE}.tmp")
    (target / f".{CARD_FILE}.tmp").replace(target / CARD_FILE)


def test_empty_repository_is_live_not_ready_until_a_model_arrives(
    tmp_path: Path, tiny_repository: Path, start_server
) -> None:
    root = tmp_path / "model_repository"  # does not even exist yet
    live = start_server(make_settings(root, poll_interval_s=0.1), ready=False)
    with live.client() as c:
        assert c.get("/healthz").status_code == 200 and c.get("/v2/health/live").status_code == 200
        for path in ("/readyz", "/v2/health/ready"):
            r = c.get(path)
            assert r.status_code == 503 and r.json()["code"] == "not_ready"
        assert c.get("/models").json() == {"models": []}
        root.mkdir()
        publish(tiny_repository / "lenet5", root / "lenet5")
        live.wait_until(lambda c: c.get("/v2/health/ready").status_code == 200)
        assert c.get("/readyz").json()["models"] == {"lenet5": "READY"}
        assert (
            c.post("/predict", json={"tensor": [[[0.0] * 32] * 32]}).status_code == 200
        )  # the only model: the default
