"""Network in Network: no fc layer, the classifier a 1x1 conv, counts, shapes and minimum sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import models
from models.nin import NIN, NIN_CIFAR, Stage
from tests.models.helpers import meta_model, n_params, output_shapes


@pytest.mark.parametrize(
    "name, params",
    [
        # 14,592 + 30,880 + 15,456 | 460,992 + 37,056 + 37,056 | 331,968 + 37,056 + 1,930
        ("nin_cifar", 966_986),
        # 34,944 + 9,312 x2 | 614,656 + 65,792 x2 | 885,120 + 147,840 x2 | 3,539,968 + 1,049,600 + 1,025,000
        ("nin", 7_595_176),
    ],
)
def test_param_count(name: str, params: int) -> None:
    assert n_params(meta_model(name)) == params


@pytest.mark.parametrize("name", ["nin_cifar", "nin"])
def test_no_fully_connected_layer(name: str) -> None:
    model = meta_model(name, num_classes=13)
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    head = model.get_classifier()
    assert isinstance(head, nn.Conv2d) and head.kernel_size == (1, 1) and head.out_channels == 13
    assert head is [m for m in model.modules() if isinstance(m, nn.Conv2d)][-1]


def test_cifar_shapes() -> None:
    model = meta_model("nin_cifar")
    x = torch.empty(1, 3, 32, 32, device="meta")
    # The reference model's pools round up: 32 -> 16 -> 8, then the 8x8 class maps are averaged.
    assert output_shapes(model, x, nn.Conv2d) == [
        (192, 32, 32),
        (160, 32, 32),
        (96, 32, 32),
        (192, 16, 16),
        (192, 16, 16),
        (192, 16, 16),
        (192, 8, 8),
        (192, 8, 8),
        (10, 8, 8),
    ]
    assert [type(m) for m in model.features if not isinstance(m, nn.Sequential)] == [
        nn.MaxPool2d,
        nn.Dropout,
        nn.AvgPool2d,
        nn.Dropout,
    ]
    assert model(x).shape == (1, 10)


def test_imagenet_shapes() -> None:
    model = meta_model("nin")
    x = torch.empty(1, 3, 224, 224, device="meta")
    # Each block's kxk convolution: 224 -> 54, then the pools (ceil mode) give 27, 13, 6.
    convs = output_shapes(model, x, nn.Conv2d)[::3]
    assert convs == [(96, 54, 54), (256, 27, 27), (384, 13, 13), (1024, 6, 6)]
    assert output_shapes(model, x, nn.MaxPool2d) == [(96, 27, 27), (256, 13, 13), (384, 6, 6)]
    assert model.forward_features(x).shape == (1, 1000, 6, 6)
    assert model(x).shape == (1, 1000)


@pytest.mark.parametrize("name, side", [("nin_cifar", 4), ("nin", 39)])
def test_min_input_size_is_exact(name: str, side: int) -> None:
    model = meta_model(name)
    assert model.info.min_input_size == side
    assert model(torch.empty(1, 3, side, side, device="meta")).shape == (1, model.info.num_classes)
    too_small = torch.empty(1, 3, side - 1, side - 1, device="meta")
    with pytest.raises(RuntimeError):  # torch itself: a pool gets a map smaller than its window
        model.forward_head(model.forward_features(too_small))
    with pytest.raises(models.InputSizeError, match=f"at least {side}x{side}"):
        model(too_small)


def test_real_forward_and_reset_classifier() -> None:
    torch.manual_seed(0)
    model = models.create_model("nin_cifar").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 10) and torch.isfinite(out).all()
        # Nothing follows the pooled class maps: pre-logits and logits are the same vector.
        assert torch.equal(model.forward_head(model.forward_features(x), pre_logits=True), out)
        model.reset_classifier(7)
        assert model(x).shape == (2, 7)
    assert model.info.num_classes == 7


def test_bad_stage_table() -> None:
    with pytest.raises(ValueError, match=r"stage 3: \(192, 192, 10\)"):
        NIN((*NIN_CIFAR[:2], Stage(3, 1, 1, (192, 192, 10), None, False)))
    with pytest.raises(ValueError, match="'min'"):
        NIN((Stage(3, 1, 1, (8, 8, 8), "min", False), NIN_CIFAR[-1]))  # type: ignore[arg-type]


def test_class_maps_without_their_relu() -> None:
    torch.manual_seed(0)
    reference = models.create_model("nin_cifar")
    model = models.create_model("nin_cifar", class_map_relu=False).eval()
    assert "relu2" in reference.features.block3._modules and "relu2" not in model.features.block3._modules
    assert all("relu2" in getattr(model.features, f"block{i}")._modules for i in (1, 2)), "only the class maps lose it"
    assert n_params(model) == n_params(reference) == 966_986
    with torch.no_grad():
        out = model(torch.randn(8, 3, 32, 32))
        assert (out < 0).any(), "logits can be negative"
        assert (reference.eval()(torch.randn(8, 3, 32, 32)) >= 0).all(), "the reference's cannot"
