"""AlexNet, torchvision's AlexNet and ZFNet: exact parameter counts, torchvision's layout, shapes, sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import models
from models.alexnet import AlexNet, Conv
from tests.models.helpers import meta_model, n_params, output_shapes, state_layout
from tests.reference import torchvision_layouts

NAMES = ["alexnet", "alexnet_torchvision", "zfnet"]


@pytest.mark.parametrize(
    "name, params",
    [
        # conv 34,944 + 614,656 + 885,120 + 1,327,488 + 884,992; fc 37,752,832 + 16,781,312 + 4,097,000
        ("alexnet", 62_378_344),
        ("alexnet_torchvision", 61_100_840),
        # conv 14,208 + 614,656 + 1,180,160 + 4,719,616 + 4,719,104; fc6 takes 512x6x6 = 18,432 inputs
        ("zfnet", 107_627_624),
    ],
)
def test_param_count(name: str, params: int) -> None:
    assert n_params(meta_model(name)) == params


def test_torchvision_layout_matches_json() -> None:
    ref = torchvision_layouts()["alexnet"]
    model = meta_model("alexnet_torchvision")
    assert model.info.torchvision == "alexnet"
    assert state_layout(model) == ref["state_dict"]
    assert n_params(model) == ref["params"]


def test_torchvision_state_dict_loads_strictly() -> None:
    # Real CPU tensors shaped from the json, as torchvision's checkpoint would be; a distinct value
    # in each shows that every tensor lands in its own place.
    layout = torchvision_layouts()["alexnet"]["state_dict"]
    state = {k: torch.full(shape, float(i)) for i, (k, shape) in enumerate(layout.items())}
    model = meta_model("alexnet_torchvision").to_empty(device="cpu")
    model.load_state_dict(state, strict=True)
    assert [float(t.flatten()[-1]) for t in model.state_dict().values()] == list(range(len(layout)))


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_at_canonical_size(name: str) -> None:
    model = meta_model(name, num_classes=5)
    x = torch.empty(2, *model.info.input_size, device="meta")
    assert model(x).shape == (2, 5)
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 4096)


def test_alexnet_layer_shapes() -> None:
    # The CNN course's AlexNet: 227x227x3 -> 55x55x96 -> 27x27x96 -> 27x27x256 -> 13x13 ... -> 6x6x256 = 9216.
    model = meta_model("alexnet")
    x = torch.empty(1, 3, 227, 227, device="meta")
    assert output_shapes(model, x, nn.Conv2d) == [
        (96, 55, 55),
        (256, 27, 27),
        (384, 13, 13),
        (384, 13, 13),
        (256, 13, 13),
    ]
    assert output_shapes(model, x, nn.MaxPool2d) == [(96, 27, 27), (256, 13, 13), (256, 6, 6)]
    assert output_shapes(model, x, nn.Flatten) == [(9216,)]
    # LRN after the ReLUs of conv1 and conv2, before their pools (section 3.3 and 3.5).
    kinds = [type(m).__name__ for m in model.features]
    assert kinds[:8] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"] * 2


def test_zfnet_layer_shapes() -> None:
    # Fig. 3 of Zeiler & Fergus: 224 -> 110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 6.
    model = meta_model("zfnet")
    x = torch.empty(1, 3, 224, 224, device="meta")
    assert output_shapes(model, x, nn.Conv2d) == [
        (96, 110, 110),
        (256, 26, 26),
        (512, 13, 13),
        (1024, 13, 13),
        (512, 13, 13),
    ]
    assert output_shapes(model, x, nn.MaxPool2d) == [(96, 55, 55), (256, 13, 13), (512, 6, 6)]


@pytest.mark.parametrize("name", NAMES)
def test_min_input_size_is_exact(name: str) -> None:
    model = meta_model(name)
    side = model.info.min_input_size
    assert model(torch.empty(1, 3, side, side, device="meta")).shape == (1, 1000)
    too_small = torch.empty(1, 3, side - 1, side - 1, device="meta")
    with pytest.raises(RuntimeError):  # torch itself: a pool gets a map smaller than its window
        model.forward_head(model.forward_features(too_small))
    with pytest.raises(models.InputSizeError, match=f"at least {side}x{side}"):
        model(too_small)


def test_real_forward_and_reset_classifier() -> None:
    torch.manual_seed(0)
    model = models.create_model("alexnet_torchvision", num_classes=3).eval()
    x = torch.randn(2, 3, 63, 63)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 3) and torch.isfinite(out).all()
        model.reset_classifier(7)
        assert model(x).shape == (2, 7)
    assert model.get_classifier() is model.classifier[6]
    assert model.info.num_classes == 7


def test_options() -> None:
    model = meta_model("alexnet", in_channels=1, dropout=0.2)
    assert model.features[0].weight.shape == (96, 1, 11, 11)
    assert model.info.input_size == (1, 227, 227)
    assert {m.p for m in model.modules() if isinstance(m, nn.Dropout)} == {0.2}


def test_bad_layer_table() -> None:
    with pytest.raises(ValueError, match="'P'"):
        AlexNet((Conv(8, 3), "P"))
    with pytest.raises(ValueError, match="out_channels=0"):
        AlexNet((Conv(0, 3),))
