"""POST /predict and /models/{name}/predict over real HTTP: every input kind, options, errors."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from repository import ModelCard, Repository

from .helpers import assert_a_best_class, direct, encode, pattern, reference_tensor, sample_photos
from .live import make_settings
from .test_preprocess import bomb_png

pytestmark = pytest.mark.xdist_group("service")


def _probabilities(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.array([p["probabilities"] for p in response.json()["predictions"]], dtype=np.float32)


def _assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "code", "status"} and body["status"] == status and body["error"]
    if code:
        assert body["code"] == code, body
    return body


def test_multipart_image_matches_direct_onnxruntime(
    client: httpx.Client, repository: Path, cards, rgb_model: str
) -> None:
    png = encode(pattern((40, 52)))
    r = client.post(
        "/predict", params={"model": rgb_model, "probabilities": True}, files={"file": ("x.png", png, "image/png")}
    )
    want = direct(repository, rgb_model, reference_tensor(cards[rgb_model], png)[None])["probabilities"]
    np.testing.assert_allclose(_probabilities(r), want, rtol=1e-5, atol=1e-6)
    body = r.json()
    card: ModelCard = cards[rgb_model]
    assert (body["model"], body["version"], body["variant"]) == (rgb_model, card.latest_version, "fp32")
    assert body["provider"] == "CPUExecutionProvider"
    top = body["predictions"][0]["top_k"]
    assert len(top) == min(5, card.num_classes)
    assert_a_best_class(top[0]["index"], want[0])
    assert top[0]["label"] == card.labels[top[0]["index"]] and top[0]["probability"] == pytest.approx(
        float(want.max()), rel=1e-5
    )
    assert [t["probability"] for t in top] == sorted((t["probability"] for t in top), reverse=True)
    assert set(body["timings"]) == {"decode_ms", "queue_ms", "inference_ms", "total_ms", "batch_size"}


def test_several_images_in_one_multipart_request(
    client: httpx.Client, repository: Path, cards, grey_model: str
) -> None:
    images = [encode(pattern(seed=i)) for i in range(3)]
    files = [("file", (f"{i}.png", data, "image/png")) for i, data in enumerate(images)]
    r = client.post(f"/models/{grey_model}/predict", params={"probabilities": "true"}, files=files)
    batch = np.stack([reference_tensor(cards[grey_model], data) for data in images])
    np.testing.assert_allclose(
        _probabilities(r), direct(repository, grey_model, batch)["probabilities"], rtol=1e-5, atol=1e-6
    )


def test_options_as_multipart_fields(client: httpx.Client, grey_model: str) -> None:
    data = {"model": grey_model, "top_k": "2"}
    r = client.post("/predict", data=data, files={"image": ("a.png", encode(pattern()), "image/png")})
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"][0]["top_k"]) == 2


def test_raw_body_photo(client: httpx.Client, rgb_model: str, cards) -> None:
    r = client.post(f"/models/{rgb_model}/predict", content=sample_photos()[0], headers={"content-type": "image/jpeg"})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["top_k"][0]["label"] in cards[rgb_model].labels
    r = client.post("/predict", params={"model": rgb_model}, content=sample_photos()[1])  # no content type at all
    assert r.status_code == 200, r.text


def test_base64_json_and_tensor_json_agree(client: httpx.Client, repository: Path, cards, grey_model: str) -> None:
    images = [encode(pattern(seed=5)), encode(pattern(seed=6), "JPEG")]
    b64 = [base64.b64encode(images[0]).decode(), "data:image/jpeg;base64," + base64.b64encode(images[1]).decode()]
    r = client.post("/predict", json={"model": grey_model, "images": b64, "top_k": 3, "probabilities": True})
    from_images = _probabilities(r)
    assert [len(p["top_k"]) for p in r.json()["predictions"]] == [3, 3]

    tensors = np.stack([reference_tensor(cards[grey_model], images[0])])
    r = client.post("/predict", json={"model": grey_model, "tensor": tensors.tolist(), "probabilities": True})
    from_tensor = _probabilities(r)
    np.testing.assert_allclose(from_tensor, from_images[:1], rtol=1e-5, atol=1e-6)
    # (C, H, W) without the batch dimension is one input
    r = client.post(f"/models/{grey_model}/predict", json={"tensor": tensors[0].tolist(), "probabilities": True})
    np.testing.assert_array_equal(_probabilities(r), from_tensor)
    np.testing.assert_allclose(
        from_tensor, direct(repository, grey_model, tensors)["probabilities"], rtol=1e-5, atol=1e-6
    )


def test_version_and_variant(client: httpx.Client, repository: Path, cards, grey_model: str) -> None:
    card: ModelCard = cards[grey_model]
    version = card.latest_version
    x = np.zeros((1, *card.input.shape), np.float32)
    r = client.post(
        "/predict", params={"model": grey_model, "version": version, "variant": "int8"}, json={"tensor": x.tolist()}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["variant"]) == (version, "int8")
    want = direct(repository, grey_model, x, precision="int8")["probabilities"]
    got = client.post(
        f"/models/{grey_model}/predict", json={"tensor": x.tolist(), "variant": "int8", "probabilities": True}
    )
    np.testing.assert_allclose(_probabilities(got), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"model": "nope"}, 404, "model_not_found"),
        ({"version": 99}, 404, "version_not_found"),
        ({"variant": "fp64"}, 422, "invalid_input"),
        ({"top_k": 0}, 422, "invalid_input"),
        ({"unknown": 1}, 422, "invalid_input"),
    ],
)
def test_bad_options(client: httpx.Client, grey_model: str, params: dict, status: int, code: str) -> None:
    query = {"model": grey_model, **params}
    _assert_error(
        client.post("/predict", params=query, content=encode(pattern()), headers={"content-type": "image/png"}),
        status,
        code,
    )


def test_unpublished_or_unloaded_variant_is_404(start_server, tiny_repository: Path) -> None:
    # The tiny repository publishes fp32 and int8 only; this server loads fp32 only.
    card = Repository(tiny_repository).load_card("lenet5")
    assert not card.versions[card.latest_version].variants["fp16"].published
    with start_server(make_settings(tiny_repository, variants=["fp32"])).client() as c:
        for variant in ("fp16", "int8"):
            r = c.post("/models/lenet5/predict", params={"variant": variant}, content=encode(pattern()))
            body = _assert_error(r, 404, "variant_not_found")
            assert "available: fp32" in body["error"]
        assert (
            c.post("/models/lenet5/predict", params={"variant": "fp32"}, content=encode(pattern())).status_code == 200
        )


def test_model_must_be_named_when_several_serve(client: httpx.Client, cards) -> None:
    assert len(cards) > 1
    body = _assert_error(client.post("/predict", content=encode(pattern())), 422, "invalid_input")
    assert "name a model" in body["error"]


def test_path_and_body_must_agree(client: httpx.Client, grey_model: str, rgb_model: str) -> None:
    r = client.post(
        f"/models/{grey_model}/predict",
        json={"model": rgb_model, "images": [base64.b64encode(encode(pattern())).decode()]},
    )
    _assert_error(r, 422, "invalid_input")


def test_wrong_tensor_shape_names_the_expected_one(client: httpx.Client, grey_model: str, cards) -> None:
    c, h, w = cards[grey_model].input.shape
    body = _assert_error(
        client.post(f"/models/{grey_model}/predict", json={"tensor": np.zeros((1, c, h + 1, w)).tolist()}), 422
    )
    assert f"[-1 (batch), {c}, {h}, {w}]" in body["error"]
    assert body["details"]["expected"]["shape"] == [-1, c, h, w]
    for bad in ([[1, 2], [3]], "text", [["a"]], []):
        _assert_error(client.post(f"/models/{grey_model}/predict", json={"tensor": bad}), 422, "invalid_input")


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"content": b"GIF89a but not really", "headers": {"content-type": "image/gif"}},
            415,
            "unsupported_media_type",
        ),
        ({"content": encode(pattern((64, 64)))[:150], "headers": {"content-type": "image/png"}}, 422, "invalid_input"),
        ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type"),
        ({"json": {"images": ["%%% not base64 %%%"]}}, 422, "invalid_input"),
        ({"json": {"images": ["aGVsbG8="], "tensor": [0]}}, 422, "invalid_input"),
        ({"json": {}}, 422, "invalid_input"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "invalid_input"),
        ({"files": {"file": ("x.png", b"junk", "image/png")}}, 415, "unsupported_media_type"),
        ({"files": {"top_k": (None, "1")}}, 422, "invalid_input"),
        ({"data": {"top_k": "1"}}, 415, "unsupported_media_type"),
        (
            {"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data; boundary=x"}},
            422,
            "invalid_input",
        ),
        ({"content": bomb_png(), "headers": {"content-type": "image/png"}}, 413, "image_too_large"),
    ],
    ids=[
        "not-an-image",
        "truncated",
        "text-plain",
        "bad-base64",
        "images-and-tensor",
        "empty-json",
        "bad-json",
        "junk-file",
        "form-without-file",
        "urlencoded-form",
        "broken-multipart",
        "decompression-bomb",
    ],
)
def test_bad_inputs_are_client_errors(
    client: httpx.Client, grey_model: str, kwargs: dict, status: int, code: str | None
) -> None:
    _assert_error(client.post(f"/models/{grey_model}/predict", **kwargs), status, code)
    assert client.get(f"/v2/models/{grey_model}/ready").status_code == 200  # and the server serves on


def test_too_many_images(client: httpx.Client, grey_model: str, server) -> None:
    n = server.settings.max_images + 1
    b64 = base64.b64encode(encode(Image.new("L", (8, 8)))).decode()
    body = _assert_error(client.post(f"/models/{grey_model}/predict", json={"images": [b64] * n}), 422)
    assert str(server.settings.max_images) in body["error"]
