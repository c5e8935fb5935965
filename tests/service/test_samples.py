"""GET /models/{name}/samples and /models/{name}/samples/{file}: the held-out images each version publishes."""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import httpx
import pytest
from PIL import Image

from repository import ModelCard

from .live import make_settings

pytestmark = pytest.mark.xdist_group("service")


def test_every_listed_sample_is_served_as_the_card_says(client: httpx.Client, cards: dict[str, ModelCard]) -> None:
    for name, card in cards.items():
        r = client.get(f"/models/{name}/samples")
        assert r.status_code == 200
        body = r.json()
        listed = card.versions[card.latest_version].samples
        assert body["model"] == name and body["version"] == card.latest_version and len(listed) == 20
        assert [(s["file"], s["label"], s["index"]) for s in body["samples"]] == [
            (s.file, s.label, s.index) for s in listed
        ]
        for sample, record in zip(body["samples"], listed, strict=True):
            assert sample["url"] == f"/models/{name}/samples/{record.file}?version={card.latest_version}"
            image = client.get(sample["url"])
            assert image.status_code == 200 and image.headers["content-type"] == "image/png"
            assert hashlib.sha256(image.content).hexdigest() == record.sha256
            assert Image.open(io.BytesIO(image.content)).format == "PNG"
        assert client.get(f"/models/{name}/samples", params={"version": card.latest_version}).json() == body


def test_a_sample_classifies_like_any_image(client: httpx.Client, grey_model: str) -> None:
    sample = client.get(f"/models/{grey_model}/samples").json()["samples"][0]
    png = client.get(sample["url"]).content
    r = client.post(f"/models/{grey_model}/predict", content=png, headers={"content-type": "image/png"})
    assert r.status_code == 200 and len(r.json()["predictions"]) == 1


@pytest.mark.parametrize(
    "file",
    ["nope.png", "model.onnx", "..%2Fmodel.json", "..%2F..%2Fmodel.json", "%2E%2E", "0-0.PNG", "samples"],
)
def test_only_files_the_card_lists_are_served(client: httpx.Client, grey_model: str, file: str) -> None:
    r = client.get(f"/models/{grey_model}/samples/{file}")
    assert r.status_code == 404
    body = r.json()
    assert body["status"] == 404 and body["code"] in ("sample_not_found", "not_found")
    if body["code"] == "sample_not_found":
        assert "0-0.png" in body["error"] and "0-0.png" in body["details"]["samples"]


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("samples", {"version": 99}, 404, "version_not_found"),
        ("samples/0-0.png", {"version": 99}, 404, "version_not_found"),
        ("samples", {"version": 0}, 422, "invalid_input"),
        ("samples/0-0.png", {"version": "latest"}, 422, "invalid_input"),
    ],
)
def test_bad_versions(client: httpx.Client, grey_model: str, path: str, params: dict, status: int, code: str) -> None:
    r = client.get(f"/models/{grey_model}/{path}", params=params)
    assert r.status_code == status and r.json()["code"] == code


def test_an_unknown_model_is_404(client: httpx.Client) -> None:
    for path in ("/models/nope/samples", "/models/nope/samples/0-0.png"):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["code"] == "model_not_found"


def test_a_sample_changed_on_disk_is_not_served(
    repository: Path, tmp_path: Path, grey_model: str, start_server
) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(repository / grey_model, copy / grey_model)
    (copy / grey_model / "1" / "samples" / "0-0.png").write_bytes(b"edited")
    (copy / grey_model / "1" / "samples" / "1-0.png").unlink()
    live = start_server(make_settings(copy, variants=["fp32"]))
    with live.client() as c:
        for file in ("0-0.png", "1-0.png"):
            r = c.get(f"/models/{grey_model}/samples/{file}")
            assert r.status_code == 503 and r.json()["code"] == "sample_unavailable", r.text
        assert c.get(f"/models/{grey_model}/samples/2-1.png").status_code == 200
