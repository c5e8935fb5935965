"""POST /models/{name}/preprocess: the image as the model sees it, from the same code /predict runs."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from repository import ModelCard

from .helpers import encode, pattern, reference_tensor, sample_photos
from .test_preprocess import bomb_png

pytestmark = pytest.mark.xdist_group("service")


def _png_of(data_url: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix) :])))
    assert image.format == "PNG"
    return image


def _as_pixels(card: ModelCard, tensor: np.ndarray) -> np.ndarray:
    """The reference tensor mapped back to 8-bit pixels (x * std + mean, clipped), H x W x C."""
    mean = np.asarray(card.input.mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(card.input.std, dtype=np.float32).reshape(-1, 1, 1)
    return np.rint(np.clip(tensor * std + mean, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)


@pytest.mark.parametrize("which", ["grey", "rgb"])
def test_the_answer_is_the_training_pipelines_tensor(
    client: httpx.Client, cards: dict[str, ModelCard], grey_model: str, rgb_model: str, which: str
) -> None:
    name = grey_model if which == "grey" else rgb_model
    card = cards[name]
    photo = sample_photos()[1]  # 640x427: resized and cropped for both models
    r = client.post(f"/models/{name}/preprocess", content=photo, headers={"content-type": "image/jpeg"})
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == name and body["version"] == card.latest_version and body["shape"] == card.input.shape
    # The service decodes big JPEGs at a reduced scale (draft mode): within a few levels of a full decode.
    expected = reference_tensor(card, photo)
    for stat in ("mean", "std", "min", "max"):
        assert body[stat] == pytest.approx(float(getattr(expected, stat)()), abs=0.05), stat
    image = _png_of(body["image"])
    channels, height, width = card.input.shape
    assert image.size == (width, height) and image.mode == ("L" if channels == 1 else "RGB")
    got = np.asarray(image).reshape(height, width, channels).astype(int)
    assert np.abs(got - _as_pixels(card, expected)).mean() < 3


def test_a_png_is_exactly_the_training_pipelines_tensor(client: httpx.Client, cards, rgb_model: str) -> None:
    card = cards[rgb_model]
    png = encode(pattern((70, 50)))  # PNGs decode in full: to the level
    body = client.post(f"/models/{rgb_model}/preprocess", content=png, headers={"content-type": "image/png"}).json()
    expected = reference_tensor(card, png)
    assert body["mean"] == pytest.approx(float(expected.mean()), abs=1e-5)
    assert (body["min"], body["max"]) == (pytest.approx(float(expected.min())), pytest.approx(float(expected.max())))
    got = np.asarray(_png_of(body["image"])).astype(int)
    assert np.abs(got - _as_pixels(card, expected).astype(int)).max() <= 1


def test_every_image_body_gives_the_same_answer(client: httpx.Client, grey_model: str) -> None:
    png = encode(pattern((40, 30), "L"))
    path = f"/models/{grey_model}/preprocess"
    raw = client.post(path, content=png, headers={"content-type": "image/png"}).json()
    multipart = client.post(path, files={"file": ("digit.png", png, "image/png")}).json()
    b64 = client.post(path, json={"images": [base64.b64encode(png).decode()]}).json()
    assert raw == multipart == b64
    again = client.post(path, params={"version": raw["version"]}, content=png, headers={"content-type": "image/png"})
    assert again.json() == raw


def test_a_text_file_is_415_in_the_one_error_shape(client: httpx.Client, grey_model: str) -> None:
    path = f"/models/{grey_model}/preprocess"
    for response in (
        client.post(path, files={"file": ("notes.txt", b"hello, not an image", "text/plain")}),
        client.post(path, content=b"hello, not an image", headers={"content-type": "image/png"}),
        client.post(path, content=b"hello", headers={"content-type": "text/plain"}),
    ):
        assert response.status_code == 415
        body = response.json()
        assert set(body) == {"error", "code", "status"} and body["code"] == "unsupported_media_type"
    assert client.get("/models").status_code == 200  # and the server carries on


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "message"),
    [
        ({"json": {"tensor": [[[0.0] * 32] * 32]}}, 422, "invalid_input", "send an image"),
        ({"files": [("file", b"a"), ("file", b"b")]}, 422, "invalid_input", "one image at a time, got 2"),
        ({"content": b"", "headers": {"content-type": "image/png"}}, 422, "invalid_input", "empty image"),
        ({"json": {"images": ["%%%"]}}, 422, "invalid_input", "not valid base64"),
        ({"content": bomb_png(), "headers": {"content-type": "image/png"}}, 413, "image_too_large", "pixels"),
        ({"params": {"version": 99}, "content": b"x"}, 404, "version_not_found", "no version 99"),
        ({"params": {"version": 0}, "content": b"x"}, 422, "invalid_input", "version"),
    ],
)
def test_bad_requests_are_client_errors(
    client: httpx.Client, grey_model: str, kwargs: dict, status: int, code: str, message: str
) -> None:
    r = client.post(f"/models/{grey_model}/preprocess", **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code and message in r.json()["error"]


def test_an_unknown_model_is_404(client: httpx.Client) -> None:
    r = client.post("/models/nope/preprocess", content=encode(pattern()), headers={"content-type": "image/png"})
    assert r.status_code == 404 and r.json()["code"] == "model_not_found"
