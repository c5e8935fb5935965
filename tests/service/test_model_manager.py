"""Loading, polling and hot swapping; broken models are reported and never take the others down.

These tests copy the tiny repository into a temporary folder and change it while a server runs.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest

from repository import CARD_FILE, Repository, write_json_atomic

from .helpers import direct
from .live import LiveServer, make_settings
from .repo_builder import add_version
from .test_health import publish

pytestmark = pytest.mark.xdist_group("service")

X = np.random.default_rng(11).standard_normal((1, 1, 32, 32)).astype(np.float32)


def _models(c: httpx.Client) -> dict[str, dict]:
    return {m["name"]: m for m in c.get("/models").json()["models"]}


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


class Hammer:
    """Threads sending the same lenet5 request over and over, recording every answer."""

    def __init__(self, live: LiveServer, threads: int = 3) -> None:
        self.live = live
        self.results: list[tuple[int, int | None, list[float] | None]] = []
        self.per_thread: list[list[int | None]] = [[] for _ in range(threads)]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, index: int) -> None:
        with self.live.client() as c:
            while not self._stop.is_set():
                r = c.post("/models/lenet5/predict", json={"tensor": X.tolist(), "probabilities": True})
                body = r.json()
                version = body.get("version")
                probabilities = body["predictions"][0]["probabilities"] if r.status_code == 200 else None
                self.results.append((r.status_code, version, probabilities))
                self.per_thread[index].append(version)

    def __enter__(self) -> Hammer:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def wait_for(self, version: int, count: int = 5) -> None:
        self.live.wait_until(lambda _: sum(1 for r in self.results if r[1] == version) >= count)


def test_hot_reload_new_version_and_new_model_without_dropping_requests(
    tmp_path: Path, tiny_repository: Path, start_server
) -> None:
    root = tmp_path / "model_repository"
    root.mkdir()
    publish(tiny_repository / "lenet5", root / "lenet5")
    live = start_server(make_settings(root, poll_interval_s=0.1, variants=["fp32"]))

    with Hammer(live) as hammer:
        hammer.wait_for(1)
        add_version(root, "lenet5", 2, seed=42)  # version files first, then the card: as export publishes
        hammer.wait_for(2)
        publish(tiny_repository / "lenet5-rgb", root / "lenet5-rgb")  # a new model appears
        live.wait_until(lambda c: _models(c).get("lenet5-rgb", {}).get("status") == "READY")

    assert {status for status, _, _ in hammer.results} == {200}  # nothing dropped, nothing failed
    for versions in hammer.per_thread:  # each caller saw 1 ... 1 then 2 ... 2: one swap
        assert versions == sorted(versions) and set(versions) <= {1, 2}
    by_version = {v: np.array(p, np.float32) for _, v, p in hammer.results}
    for version in (1, 2):
        np.testing.assert_allclose(
            by_version[version], direct(root, "lenet5", X, version=version)["probabilities"][0], atol=1e-6
        )
    assert not np.allclose(by_version[1], by_version[2])

    with live.client() as c:
        m = _models(c)["lenet5"]
        assert m["served_versions"] == [2] and m["latest_version"] == 2
        r = c.post("/models/lenet5/predict", params={"version": 1}, json={"tensor": X.tolist()})
        assert r.status_code == 404 and "CNNSERVE_VERSION_POLICY" in r.json()["error"]

        # A broken update never takes down what serves: the card becomes unreadable, version 2 stays.
        (root / "lenet5" / CARD_FILE).write_text("{ not json")
        live.wait_until(lambda c: (_models(c)["lenet5"]["reason"] or "").startswith("reload failed"))
        assert _models(c)["lenet5"]["status"] == "READY"
        assert c.post("/models/lenet5/predict", json={"tensor": X.tolist()}).json()["version"] == 2

        # Removing a card unloads the model (Triton's poll mode does the same).
        (root / "lenet5-rgb" / CARD_FILE).unlink()
        live.wait_until(lambda c: "lenet5-rgb" not in _models(c))
        assert c.post("/models/lenet5-rgb/predict", json={"tensor": X.tolist()}).status_code == 404


def test_version_policy_all_serves_every_version(tmp_path: Path, tiny_repository: Path, start_server) -> None:
    root = tmp_path / "model_repository"
    root.mkdir()
    publish(tiny_repository / "lenet5", root / "lenet5")
    add_version(root, "lenet5", 2, seed=42)
    live = start_server(make_settings(root, version_policy="all", variants=["fp32"]))
    with live.client() as c:
        assert _models(c)["lenet5"]["served_versions"] == [1, 2]
        for version in (1, 2):
            r = c.post(
                "/models/lenet5/predict",
                params={"version": version},
                json={"tensor": X.tolist(), "probabilities": True},
            )
            assert r.json()["version"] == version
            want = direct(root, "lenet5", X, version=version)["probabilities"]
            np.testing.assert_allclose([r.json()["predictions"][0]["probabilities"]], want, atol=1e-6)
        assert c.get("/v2/models/lenet5").json()["versions"] == ["1", "2"]
        assert c.get("/v2/models/lenet5/versions/1/ready").status_code == 200


def test_broken_models_are_unavailable_with_the_reason_and_the_others_serve(
    tmp_path: Path, tiny_repository: Path, start_server
) -> None:
    root = shutil.copytree(tiny_repository, tmp_path / "model_repository")
    _flip_a_byte(root / "lenet5-rgb" / "1" / "model.onnx")  # bad hash: the whole model
    _flip_a_byte(root / "lenet5" / "1" / "model.int8.onnx")  # bad hash: one variant only
    (root / "broken").mkdir()
    (root / "broken" / CARD_FILE).write_text('{"name": "broken"}')  # an invalid card
    card = json.loads((root / "lenet5" / CARD_FILE).read_text())
    (root / "orphan").mkdir()
    write_json_atomic(root / "orphan" / CARD_FILE, {**card, "name": "orphan"})  # a card without its files
    (root / "Not A Model").mkdir()  # not a model name: ignored

    live = start_server(make_settings(root))
    with live.client() as c:
        models = _models(c)
        assert set(models) == {"lenet5", "lenet5-rgb", "broken", "orphan"}
        assert models["lenet5"]["status"] == "READY"
        assert {s: models[s]["status"] for s in ("lenet5-rgb", "broken", "orphan")} == dict.fromkeys(
            ("lenet5-rgb", "broken", "orphan"), "UNAVAILABLE"
        )
        assert "sha256" in models["lenet5-rgb"]["reason"]
        assert "invalid model card" in models["broken"]["reason"]
        assert "cannot read" in models["orphan"]["reason"]
        variants = {v["precision"]: v for v in models["lenet5"]["versions"][0]["variants"]}
        assert variants["int8"]["status"] == "UNAVAILABLE" and "sha256" in variants["int8"]["reason"]
        assert variants["fp16"]["reason"] == "not built by the tests"

        r = c.post("/models/lenet5-rgb/predict", json={"tensor": X.tolist()})
        assert r.status_code == 503 and r.json()["code"] == "model_not_ready" and "sha256" in r.json()["error"]
        assert c.get("/models/broken").status_code == 503
        assert c.get("/v2/models/lenet5-rgb/ready").status_code == 503
        r = c.post("/models/lenet5/predict", params={"variant": "int8"}, json={"tensor": X.tolist()})
        assert r.status_code == 503 and "sha256" in r.json()["error"]
        r = c.post("/models/lenet5/predict", params={"variant": "fp16"}, json={"tensor": X.tolist()})
        assert r.status_code == 404 and r.json()["code"] == "variant_not_found"
        assert c.post("/models/lenet5/predict", json={"tensor": X.tolist()}).status_code == 200
        assert c.get("/readyz").status_code == 200
        assert c.get("/readyz").json()["models"]["broken"] == "UNAVAILABLE"
    assert Repository(root).check("lenet5-rgb")  # the contract's own check agrees
