"""VGG-11/13/16/19 (+BN): torchvision's layout and counts, the transfer-learning lecture's VGG-16 table, sizes, init."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import models
from models.vgg import VGG, make_features
from tests.models.helpers import meta_model, n_params, output_shapes, state_layout
from tests.reference import torchvision_layouts

NAMES = ["vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]
# Every name but vgg13_bn, which the json lacks.
TORCHVISION_NAMES = [n for n in NAMES if n in torchvision_layouts()]


def test_every_vgg_is_registered_with_its_layout() -> None:
    assert models.list_models("vgg*") == sorted(NAMES)
    for name in NAMES:
        info = models.get_model_info(name)
        assert info.torchvision == (name if name in TORCHVISION_NAMES else None)
        assert info.classifier == "classifier.6"


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_layout_and_count_match_torchvision(name: str) -> None:
    ref = torchvision_layouts()[name]
    model = meta_model(name)
    assert state_layout(model) == ref["state_dict"]
    assert n_params(model) == ref["params"]


def test_named_counts() -> None:
    assert n_params(meta_model("vgg16")) == 138_357_544
    # vgg13 plus a scale and a shift for each of its 2x(64+128+256+512+512) = 2,944 channels.
    vgg13 = torchvision_layouts()["vgg13"]["params"]
    assert n_params(meta_model("vgg13_bn")) == vgg13 + 2 * 2_944 == 133_053_736


def test_torchvision_state_dict_loads_strictly() -> None:
    # Once, for the configuration with BN buffers, with real CPU tensors shaped from the json; a
    # distinct value in each shows that every tensor lands in its own place.
    layout = torchvision_layouts()["vgg11_bn"]["state_dict"]
    state = {k: torch.full(shape, float(i)) for i, (k, shape) in enumerate(layout.items())}
    model = meta_model("vgg11_bn").to_empty(device="cpu")
    model.load_state_dict(state, strict=True)
    assert [float(t.flatten()[-1]) for t in model.state_dict().values()] == list(range(len(layout)))


def test_vgg16_matches_the_lecture_table() -> None:
    # The lecture's table: every CONV3 layer's output and weight count (biases not counted), then the FC weights.
    table = [
        ((64, 224, 224), 1_728),
        ((64, 224, 224), 36_864),
        ((128, 112, 112), 73_728),
        ((128, 112, 112), 147_456),
        ((256, 56, 56), 294_912),
        ((256, 56, 56), 589_824),
        ((256, 56, 56), 589_824),
        ((512, 28, 28), 1_179_648),
        ((512, 28, 28), 2_359_296),
        ((512, 28, 28), 2_359_296),
        ((512, 14, 14), 2_359_296),
        ((512, 14, 14), 2_359_296),
        ((512, 14, 14), 2_359_296),
    ]
    model = meta_model("vgg16")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    shapes = output_shapes(model, torch.empty(1, 3, 224, 224, device="meta"), convs)
    assert list(zip(shapes, [c.weight.numel() for c in convs], strict=True)) == table
    fcs = [m.weight.numel() for m in model.classifier if isinstance(m, nn.Linear)]
    assert fcs == [102_760_448, 16_777_216, 4_096_000]
    assert model.forward_features(torch.empty(1, 3, 224, 224, device="meta")).shape == (1, 512, 7, 7)


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_and_min_input_size(name: str) -> None:
    # eval: in training, batch norm would itself refuse the 1x1 map of a too small input.
    model = meta_model(name, num_classes=7).eval()
    assert model(torch.empty(2, 3, 224, 224, device="meta")).shape == (2, 7)
    side = model.info.min_input_size
    assert side == 32
    assert model(torch.empty(1, 3, side, side, device="meta")).shape == (1, 7)
    too_small = torch.empty(1, 3, side - 1, side - 1, device="meta")
    with pytest.raises(RuntimeError):  # torch itself: the fifth pool gets a 1x1 map
        model.forward_head(model.forward_features(too_small))
    with pytest.raises(models.InputSizeError, match=f"at least {side}x{side}"):
        model(too_small)


def test_options() -> None:
    model = meta_model("vgg16_bn", dropout=0.3, in_channels=1)
    assert {m.p for m in model.modules() if isinstance(m, nn.Dropout)} == {0.3}
    assert model.features[0].weight.shape == (64, 1, 3, 3)
    assert isinstance(model.features[1], nn.BatchNorm2d)


def test_torchvision_init_and_real_forward() -> None:
    # A two-stage VGG is enough to check the initialisation and one real CPU forward.
    torch.manual_seed(0)
    model = VGG((64, "M", 64, "M"), num_classes=3, norm_layer=nn.BatchNorm2d)
    conv = model.features[0]
    weight = conv.weight.detach()
    # kaiming_normal_, fan_out, ReLU gain: std = sqrt(2 / (64 * 3 * 3)) = 0.0589.
    assert abs(float(weight.std()) - (2 / (64 * 9)) ** 0.5) < 0.006
    assert not conv.bias.any() and bool((model.features[1].weight == 1).all())
    fc = model.classifier[0]
    assert abs(float(fc.weight.detach().std()) - 0.01) < 0.0005 and not fc.bias.any()

    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(conv.weight.grad).all()
    model.eval()
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 4096)


def test_reset_classifier() -> None:
    model = meta_model("vgg11")
    model.reset_classifier(7)
    assert model.classifier[6].out_features == 7
    assert model(torch.empty(1, 3, 224, 224, device="meta")).shape == (1, 7)


def test_bad_configuration() -> None:
    with pytest.raises(ValueError, match="'P'"):
        make_features((64, "P"))
    with pytest.raises(ValueError, match="-8"):
        make_features((64, "M", -8))
