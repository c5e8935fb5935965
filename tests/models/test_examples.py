"""The courses' worked examples: every shape and parameter count the course material works out."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import models
from tests.models.helpers import meta_model, n_params, output_shapes

KERAS = ["keras_example_1", "keras_example_2", "keras_example_3"]


def test_registered_as_examples() -> None:
    names = [n for n in models.list_models() if models.get_model_info(n).family == "examples"]
    assert names == ["course_convnet", "inception_module", *KERAS]
    for name in names:
        info = models.get_model_info(name)
        assert info.family == "examples"
        assert len(info.mean) == len(info.std) == info.input_size[0]
        assert info.classifier == ("fc" if name == "course_convnet" else None)


def test_inception_module() -> None:
    model = meta_model("inception_module")
    x = torch.empty(1, 192, 28, 28, device="meta")
    branches = [model.branch1, model.branch2, model.branch3, model.branch4]
    assert output_shapes(model, x, branches) == [(64, 28, 28), (128, 28, 28), (32, 28, 28), (32, 28, 28)]
    assert model(x).shape == (1, 256, 28, 28)
    # 12,352 | 18,528 + 110,720 | 3,088 + 12,832 | 6,176
    assert n_params(model) == 163_696
    # The "same" padding keeps every branch at the input's size, whatever it is.
    assert model(torch.empty(1, 192, 1, 1, device="meta")).shape == (1, 256, 1, 1)


def test_course_convnet() -> None:
    model = meta_model("course_convnet")
    x = torch.empty(1, 3, 39, 39, device="meta")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    shapes = output_shapes(model, x, [*convs, model.flatten])
    assert shapes == [(10, 37, 37), (20, 17, 17), (40, 7, 7), (1960,)]
    assert model(x).shape == (1, 10)
    # 280 + 5,020 + 20,040 + 19,610
    assert n_params(model) == 44_950


def test_course_convnet_takes_only_39x39() -> None:
    model = meta_model("course_convnet")
    assert model.info.fixed_input_size and model.info.min_input_size == 39
    too_small = torch.empty(1, 3, 38, 38, device="meta")
    with pytest.raises(RuntimeError):  # torch itself: 40x6x6 = 1440 features for a 1960-wide fc
        model.forward_head(model.forward_features(too_small))
    for side in (38, 64):
        with pytest.raises(models.InputSizeError, match="exactly 3x39x39"):
            model(torch.empty(1, 3, side, side, device="meta"))


def test_course_convnet_real_forward_and_reset_classifier() -> None:
    torch.manual_seed(0)
    model = models.create_model("course_convnet", num_classes=2).eval()
    x = torch.randn(4, 3, 39, 39)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (4, 2) and torch.isfinite(out).all()
        assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (4, 1960)
        model.reset_classifier(7)
        assert model(x).shape == (4, 7)
    assert model.get_classifier() is model.fc


@pytest.mark.parametrize(
    "name, counts, shapes",
    [
        # The transfer-learning lecture's model.summary() tables, channels first.
        ("keras_example_1", [10], [(1, 8, 8)]),
        ("keras_example_2", [50, 92], [(5, 8, 8), (2, 6, 6)]),
        ("keras_example_3", [224, 73], [(8, 98, 98), (1, 96, 96)]),
    ],
)
def test_keras_summaries(name: str, counts: list[int], shapes: list[tuple[int, ...]]) -> None:
    model = meta_model(name)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [n_params(c) for c in convs] == counts
    assert n_params(model) == sum(counts)
    assert output_shapes(model, torch.empty(1, *model.info.input_size, device="meta"), convs) == shapes


@pytest.mark.parametrize("name, side", [(KERAS[0], 3), (KERAS[1], 5), (KERAS[2], 5)])
def test_keras_min_input_size_is_exact(name: str, side: int) -> None:
    model = meta_model(name)
    channels = model.info.input_size[0]
    assert model.info.min_input_size == side
    # At the minimum, the last convolution sees one 3x3 window.
    assert model(torch.empty(1, channels, side, side, device="meta")).shape[-2:] == (1, 1)
    too_small = torch.empty(1, channels, side - 1, side - 1, device="meta")
    with pytest.raises(RuntimeError):  # torch itself: an unpadded 3x3 conv gets fewer than 3x3 inputs
        model.forward_head(model.forward_features(too_small))
    with pytest.raises(models.InputSizeError, match=f"at least {side}x{side}"):
        model(too_small)


@pytest.mark.parametrize("name", KERAS)
def test_keras_real_forward(name: str) -> None:
    torch.manual_seed(0)
    model = models.create_model(name)
    out = model(torch.randn(2, *model.info.input_size))
    # Sigmoid outputs.
    assert torch.isfinite(out).all() and bool(((out > 0) & (out < 1)).all())


@pytest.mark.parametrize("name", ["inception_module", *KERAS])
def test_no_classifier(name: str) -> None:
    with pytest.raises(ValueError, match="no classification layer"):
        meta_model(name, num_classes=3)
    model = meta_model(name)
    with pytest.raises(ValueError, match="no classification layer"):
        model.reset_classifier(3)
