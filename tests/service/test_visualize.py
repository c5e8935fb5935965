"""The views over real HTTP: feature maps, filters and occlusion maps, their limits and errors.

Numbers are checked against ONNX Runtime run directly on the served file (the ``onnx`` package
adds the recorded tensors as outputs) and against the file's weights.
"""

from __future__ import annotations

import base64
import io
import math
import re
from pathlib import Path

import httpx
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from PIL import Image

from repository import ModelCard, Repository
from service.visualize.occlusion import plan

from .helpers import encode, pattern, reference_tensor
from .live import make_settings

pytestmark = pytest.mark.xdist_group("service")


def _ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def _error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["status"] == status and body["error"], body
    return body


def _pixels(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2]))) as img:
        assert img.format == "PNG"
        return np.asarray(img)


def _grey(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip(np.rint((values - lo) * 255.0 / (hi - lo)), 0, 255) if hi > lo else np.zeros_like(values)


def _served_file(repository: Path, card: ModelCard) -> Path:
    record = card.versions[card.latest_version].layer_outputs
    return Repository(repository).model_dir(card.name) / str(card.latest_version) / record.file


def _layer_values(repository: Path, card: ModelCard, tensors: list[str], x: np.ndarray) -> dict[str, np.ndarray]:
    proto = onnx.load(_served_file(repository, card))
    proto.graph.output.extend(onnx.ValueInfoProto(name=t) for t in tensors)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip(tensors, session.run(tensors, {"input": x}), strict=True))


def _metric(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    match = re.search(rf"^{name}{{{re.escape(wanted)}}} (\S+)$", text, re.MULTILINE)
    return float(match[1]) if match else None


# ------------------------------------------------------------------------------------ activations


def test_feature_maps_of_every_block_match_onnx_runtime(
    client: httpx.Client, repository: Path, cards, rgb_model: str
) -> None:
    card = cards[rgb_model]
    png = encode(pattern((40, 36)))
    body = _ok(client.post(f"/models/{rgb_model}/activations", content=png, headers={"Content-Type": "image/png"}))
    record = card.versions[card.latest_version].layer_outputs
    blocks = [layer for layer in record.layers if layer.block and len(layer.shape) == 3]
    names = [layer["name"] for layer in body["layers"]]
    tensors = [layer.tensor for layer in blocks]
    assert names == [b.name for i, b in enumerate(blocks) if b.tensor not in tensors[:i]], "every block, once"
    assert (body["model"], body["variant"], body["input_shape"]) == (rgb_model, "fp32", card.input.shape)
    x = reference_tensor(card, png)[None]
    values = _layer_values(repository, card, [layer["tensor"] for layer in body["layers"]], x)
    for layer in body["layers"]:
        want = values[layer["tensor"]][0]
        assert layer["shape"] == list(want.shape) and layer["channels"] == want.shape[0]
        assert layer["min"] == pytest.approx(float(want.min()), abs=1e-4)
        assert layer["max"] == pytest.approx(float(want.max()), abs=1e-4)
        assert layer["mean"] == pytest.approx(float(want.mean()), abs=1e-4)
        assert layer["zeros"] == pytest.approx(float(np.mean(want == 0)), abs=0.02)
        images = layer["images"]
        assert len(images) == min(16, want.shape[0]) and layer["omitted"] is None
        activity = [i["mean_abs"] for i in images]
        assert activity == sorted(activity, reverse=True), "most active first"
        assert activity[0] == pytest.approx(float(np.abs(want).mean(axis=(1, 2)).max()), rel=1e-3, abs=1e-5)
        first = images[0]
        lo, hi = layer["scale"]
        np.testing.assert_allclose(_pixels(first["image"]), _grey(want[first["index"]], lo, hi), atol=1)
    assert body["bytes"] == sum(len(i["image"]) for layer in body["layers"] for i in layer["images"])


def test_named_layers_shared_calls_folded_convolutions_and_vectors(client: httpx.Client, rgb_model: str) -> None:
    layers = "conv1,layer1.0.relu#2"
    r = client.post(
        f"/models/{rgb_model}/activations",
        params={"layers": [layers, "fc"], "channels": 3},
        json={"images": [base64.b64encode(encode(pattern())).decode()]},
    )
    body = _ok(r)
    by_name = {layer["name"]: layer for layer in body["layers"]}
    assert list(by_name) == ["conv1", "layer1.0.relu#2", "fc"]
    assert by_name["conv1"]["holds"] == "bn1" and len(by_name["conv1"]["images"]) == 3
    assert by_name["layer1.0.relu#2"]["min"] >= 0.0  # a ReLU's output
    fc = by_name["fc"]
    assert fc["shape"] == [10] and fc["images"] == [] and _pixels(fc["vector"]).shape == (3, 4)


def test_an_unknown_layer_is_422_listing_the_valid_names(client: httpx.Client, cards, grey_model: str) -> None:
    x = np.zeros(cards[grey_model].input.shape, np.float32).tolist()
    r = client.post(f"/models/{grey_model}/activations", params={"layers": "features.0,nope"}, json={"tensor": x})
    body = _error(r, 422, "unknown_layer")
    assert "'nope'" in body["error"] and "features.0" in body["error"]
    assert body["details"]["unknown"] == ["nope"] and "features.3" in body["details"]["layers"]


def test_empty_layer_names_ask_for_the_default(client: httpx.Client, grey_model: str) -> None:
    """``?layers=`` and ``?layer=`` are valid by the schema: they mean what no parameter means (an OpenAPI fuzz
    once found ``?layers=`` with a 1x1 GIF answered 500; a digit model now answers it 422: no ink)."""
    gif = io.BytesIO()
    Image.new("L", (1, 1)).save(gif, format="GIF")
    url = f"/models/{grey_model}/activations"
    blank = client.post(url, params={"layers": ""}, content=gif.getvalue(), headers={"Content-Type": "image/gif"})
    assert blank.status_code == 422 and "no ink" in blank.json()["error"]
    gif = io.BytesIO()
    image = Image.new("L", (2, 2))
    image.putpixel((1, 1), 255)
    image.save(gif, format="GIF")
    default = _ok(client.post(url, content=gif.getvalue(), headers={"Content-Type": "image/gif"}))
    for layers in ("", ",", " "):
        empty = _ok(
            client.post(url, params={"layers": layers}, content=gif.getvalue(), headers={"Content-Type": "image/gif"})
        )
        assert [layer["name"] for layer in empty["layers"]] == [layer["name"] for layer in default["layers"]]
    first = _ok(client.get(f"/models/{grey_model}/filters"))
    assert _ok(client.get(f"/models/{grey_model}/filters", params={"layer": ""}))["layer"] == first["layer"]


def test_one_input_at_a_time(client: httpx.Client, cards, grey_model: str) -> None:
    x = np.zeros((2, *cards[grey_model].input.shape), np.float32).tolist()
    for view in ("activations", "occlusion"):
        _error(client.post(f"/models/{grey_model}/{view}", json={"tensor": x}), 422, "invalid_input")
    png = encode(pattern(mode="L"))
    r = client.post(f"/models/{grey_model}/activations", files=[("file", png), ("file", png)])
    _error(r, 422, "invalid_input")
    _error(client.post("/models/nope/activations", json={"tensor": x}), 404, "model_not_found")


# ------------------------------------------------------------------------------------ filters


def test_the_first_convolutions_filters_are_its_weights(
    client: httpx.Client, repository: Path, cards, grey_model: str
) -> None:
    body = _ok(client.get(f"/models/{grey_model}/filters"))
    card = cards[grey_model]
    weights = {i.name: numpy_helper.to_array(i) for i in onnx.load(_served_file(repository, card)).graph.initializer}[
        body["weight"]
    ]
    assert body["layer"] == body["convolutions"][0] and body["type"] == "Conv2d" and body["holds"] is None
    assert body["shape"] == list(weights.shape) and body["filters_total"] == weights.shape[0]
    scale = float(np.abs(weights).max())
    assert body["scale"] == pytest.approx(scale)
    assert len(body["filters"]) == weights.shape[0]
    for f in body["filters"]:
        assert f["rgb"] is None and len(f["channels"]) == weights.shape[1] == body["in_channels_shown"]
        assert f["norm"] == pytest.approx(float(np.linalg.norm(weights[f["index"]])), rel=1e-5)
        np.testing.assert_allclose(_pixels(f["channels"][0]), _grey(weights[f["index"], 0], -scale, scale), atol=1)


def test_filters_of_a_folded_convolution_in_colour_and_of_any_layer(client: httpx.Client, rgb_model: str) -> None:
    body = _ok(client.get(f"/models/{rgb_model}/filters", params={"filters": 4}))
    assert body["layer"] == "conv1" and body["holds"] == "bn1" and body["shape"][1] == 3
    assert len(body["filters"]) == 4 and _pixels(body["filters"][0]["rgb"]).shape == (*body["shape"][2:], 3)
    deeper = _ok(client.get(f"/models/{rgb_model}/filters", params={"layer": "layer1.0.conv2", "filters": 2}))
    assert deeper["shape"][:2] == [64, 64] and len(deeper["filters"][0]["channels"]) == deeper["in_channels_shown"]
    body = _error(client.get(f"/models/{rgb_model}/filters", params={"layer": "layer1.0"}), 422, "unknown_layer")
    assert "not a convolution" in body["error"] and "conv1" in body["details"]["convolutions"]


# ------------------------------------------------------------------------------------ occlusion


def _digit_in_a_corner(card: ModelCard, index: int) -> np.ndarray:
    """A scikit-learn digit on the top-left quarter of an input that is otherwise the patch's grey (0)."""
    from sklearn.datasets import load_digits

    digit = load_digits().images[index] / 16.0  # 8x8 in [0, 1]
    side = card.input.shape[1] // 2
    pixels = np.kron(digit, np.ones((side // 8, side // 8)))
    x = np.zeros(card.input.shape, np.float32)
    x[0, :side, :side] = (pixels - card.input.mean[0]) / card.input.std[0]
    return x


def test_the_largest_drop_is_where_the_digit_is(client: httpx.Client, cards, grey_model: str) -> None:
    card = cards[grey_model]
    blank = np.zeros(card.input.shape, np.float32)
    [p_blank] = _probabilities(client, grey_model, [blank])
    # The input is built so that the relation is certain: a patch away from the digit leaves the input as
    # it was (the background is the patch's grey), and the patch over the whole digit leaves the blank input.
    # So pick a digit whose class the blank input makes clearly less likely.
    for index in range(40):
        x = _digit_in_a_corner(card, index)
        [p] = _probabilities(client, grey_model, [x])
        if p.max() - p_blank[p.argmax()] > 0.05:
            break
    else:
        pytest.fail("no digit of the first 40 that the blank input makes less likely: the model is degenerate")
    side = card.input.shape[1] // 2
    body = _ok(
        client.post(
            f"/models/{grey_model}/occlusion", params={"patch": side, "stride": side // 2}, json={"tensor": x.tolist()}
        )
    )
    drop = np.array(body["drop"])
    assert (body["rows"], body["cols"]) == drop.shape == (3, 3) and body["y"] == body["x"] == [0, side // 2, side]
    assert body["class_index"] == int(p.argmax()) and body["baseline"] == pytest.approx(float(p.max()), abs=1e-5)
    assert body["label"] == card.labels[body["class_index"]] and body["fill"] == 0.0
    row, col = np.unravel_index(drop.argmax(), drop.shape)
    assert body["y"][row] < side and body["x"][col] < side, f"the largest drop is off the digit: {drop}"
    assert drop[0, 0] == pytest.approx(float(p.max() - p_blank[p.argmax()]), abs=1e-4)
    off_the_digit = [drop[r, c] for r in range(3) for c in range(3) if body["y"][r] >= side or body["x"][c] >= side]
    assert np.abs(off_the_digit).max() < 1e-4


@pytest.mark.parametrize(
    ("side", "patch", "stride", "places"), [(32, 8, 2, 13), (64, 16, 4, 13), (67, 17, 4, 14), (224, 56, 28, 7)]
)
def test_default_patch_and_stride_per_input_size(side: int, patch: int, stride: int, places: int) -> None:
    chosen = plan(side, side, None, None, limit=10_000)
    assert (chosen.patch, chosen.stride, len(chosen.ys), len(chosen.xs)) == (patch, stride, places, places)
    assert chosen.ys[0] == 0 and chosen.ys[-1] == side - patch, "the last patch is flush with the border"


def _probabilities(client: httpx.Client, model: str, xs: list[np.ndarray]) -> np.ndarray:
    r = client.post(f"/models/{model}/predict", json={"tensor": np.stack(xs).tolist(), "probabilities": True})
    return np.array([p["probabilities"] for p in _ok(r)["predictions"]])


def test_occlusion_defaults_run_through_the_models_batcher(client: httpx.Client, cards, grey_model: str) -> None:
    card = cards[grey_model]
    before = _metric(client.get("/metrics").text, "cnnserve_batch_size_sum", model=grey_model) or 0.0
    png = encode(pattern(mode="L"))
    body = _ok(
        client.post(
            f"/models/{grey_model}/occlusion", params={"class": 3}, content=png, headers={"Content-Type": "image/png"}
        )
    )
    side = card.input.shape[1]
    assert body["patch"] == math.ceil(side / 4) and body["stride"] == body["patch"] // 4
    assert body["rows"] == len(body["y"]) and body["copies"] == body["rows"] * body["cols"] == 169
    assert body["y"][-1] == side - body["patch"] and body["class_index"] == 3
    assert body["batches"] == math.ceil(body["copies"] / card.batching.max_batch_size) + 1
    after = _metric(client.get("/metrics").text, "cnnserve_batch_size_sum", model=grey_model)
    assert after - before == body["copies"] + 1, "every copy went through the batcher"
    _error(
        client.post(
            f"/models/{grey_model}/occlusion", params={"class": 10}, content=png, headers={"Content-Type": "image/png"}
        ),
        422,
        "invalid_input",
    )
    _error(
        client.post(
            f"/models/{grey_model}/occlusion",
            params={"patch": side + 1},
            content=png,
            headers={"Content-Type": "image/png"},
        ),
        422,
        "invalid_input",
    )


# ------------------------------------------------------------------------------------ limits, sessions, old cards


def test_limits_refuse_with_the_setting_and_how_to_fit(repository: Path, cards, grey_model: str, start_server) -> None:
    settings = make_settings(
        repository,
        variants=["fp32"],
        max_view_layers=2,
        max_view_channels=4,
        max_occlusion_copies=50,
        max_view_bytes=4096,
    )
    live = start_server(settings)
    x = {"tensor": np.zeros(cards[grey_model].input.shape, np.float32).tolist()}
    url = f"/models/{grey_model}/activations"
    with live.client() as c:
        body = _error(c.post(url, params={"layers": "features.0,features.1,features.2"}, json=x), 422, "limit_exceeded")
        assert "CNNSERVE_MAX_VIEW_LAYERS" in body["error"] and body["details"]["limit"] == 2
        body = _error(c.post(url, params={"channels": 5}, json=x), 422, "limit_exceeded")
        assert "CNNSERVE_MAX_VIEW_CHANNELS" in body["error"]
        _error(c.get(f"/models/{grey_model}/filters", params={"filters": 5}), 422, "limit_exceeded")
        body = _error(c.post(f"/models/{grey_model}/occlusion", json=x), 422, "limit_exceeded")
        assert "CNNSERVE_MAX_OCCLUSION_COPIES" in body["error"] and "169" in body["error"]
        stride = int(re.search(r"stride of at least (\d+)", body["error"])[1])
        assert _ok(c.post(f"/models/{grey_model}/occlusion", params={"stride": stride}, json=x))["copies"] <= 50
        # The default asks for every block: cut to the limit, and it says so.
        body = _ok(c.post(url, json=x))
        assert len(body["layers"]) == 2 and "CNNSERVE_MAX_VIEW_LAYERS" in body["note"]
        # Images up to CNNSERVE_MAX_VIEW_BYTES, then none; the statistics stay and the layer says why.
        png = encode(pattern((64, 64), mode="L"))
        body = _ok(c.post(url, params={"channels": 4}, content=png, headers={"Content-Type": "image/png"}))
        assert 0 < body["bytes"] <= 4096
        cut = [layer for layer in body["layers"] if layer["omitted"]]
        assert cut and "CNNSERVE_MAX_VIEW_BYTES" in cut[0]["omitted"]
        assert cut[-1]["images"][-1]["image"] is None and len(cut[-1]["images"]) == 4
        assert c.post(f"/models/{grey_model}/predict", json=x).status_code == 200, "other requests keep working"


def test_a_layer_session_is_opened_on_first_use_only(repository: Path, cards, grey_model: str, start_server) -> None:
    # Serving int8 alone: the views still read the float32 file, whose tensors the card records.
    live = start_server(make_settings(repository, variants=["int8"]))
    x = {"tensor": np.zeros(cards[grey_model].input.shape, np.float32).tolist()}
    with live.client() as c:
        assert c.post(f"/models/{grey_model}/predict", json=x).status_code == 200
        assert c.post(f"/models/{grey_model}/occlusion", json=x).status_code == 200
        assert c.get(f"/models/{grey_model}/filters").status_code == 200
        text = c.get("/metrics").text
        assert _metric(text, "cnnserve_view_sessions_opened_total", model=grey_model) is None
        for _ in range(2):
            _ok(c.post(f"/models/{grey_model}/activations", json=x))
        text = c.get("/metrics").text
    assert _metric(text, "cnnserve_view_sessions_opened_total", model=grey_model) == 1.0
    for view in ("activations", "filters", "occlusion"):
        assert _metric(text, "cnnserve_view_duration_seconds_count", model=grey_model, view=view) >= 1
        assert _metric(text, "cnnserve_view_bytes_sum", model=grey_model, view=view) > 100
    assert (
        _metric(
            text,
            "cnnserve_requests_total",
            model=grey_model,
            protocol="http",
            route="/models/{name}/activations",
            status="200",
        )
        == 2
    )


def test_a_model_published_before_the_layers_were_recorded_says_to_rebuild(tiny_repository: Path, start_server) -> None:
    live = start_server(make_settings(tiny_repository, variants=["fp32"]))
    x = {"tensor": np.zeros((1, 32, 32), np.float32).tolist()}
    with live.client() as c:
        for r in (c.post("/models/lenet5/activations", json=x), c.get("/models/lenet5/filters")):
            body = _error(r, 409, "layers_not_recorded")
            assert "rebuild" in body["error"] and "python -m export build" in body["error"]
        # Occlusion needs no record: it only runs the model.
        assert _ok(c.post("/models/lenet5/occlusion", json=x))["copies"] == 169
        assert c.post("/models/lenet5/predict", json=x).status_code == 200
