"""GoogLeNet: torchvision's layout and outputs exactly, the paper's network, auxiliary classifiers."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import models
from models.googlenet import INCEPTIONS, GoogLeNet, GoogLeNetOutputs, Inception
from tests.models.helpers import meta_model, n_params, random_state_dict, state_layout
from tests.reference import torchvision_layouts

NAMES = ["googlenet", "googlenet_torchvision"]


@pytest.mark.parametrize(
    ("aux_logits", "key", "params"), [(False, "googlenet", 6_624_904), (True, "googlenet_aux", 13_004_888)]
)
def test_torchvision_layout_and_count(aux_logits: bool, key: str, params: int) -> None:
    model = meta_model("googlenet_torchvision", aux_logits=aux_logits)
    reference = torchvision_layouts()[key]
    assert n_params(model) == params == reference["params"]
    assert state_layout(model) == reference["state_dict"]


def test_drop_aux_removes_the_side_classifiers() -> None:
    model = meta_model("googlenet_torchvision", aux_logits=True)
    model.drop_aux()
    assert not model.aux_logits and model.aux1 is None and model.aux2 is None
    assert n_params(model) == 6_624_904
    assert state_layout(model) == torchvision_layouts()["googlenet"]["state_dict"]
    model.train()
    assert isinstance(model(torch.empty(2, 3, 224, 224, device="meta")), Tensor)


def _reference_forward(state: dict[str, Tensor], x: Tensor) -> Tensor:
    """torchvision's eval-mode GoogLeNet (transform_input=True) in functional ops, apart from models/."""

    def conv(x: Tensor, name: str, **kwargs) -> Tensor:
        bn = {k: state[f"{name}.bn.{k}"] for k in ("running_mean", "running_var", "weight", "bias")}
        x = F.conv2d(x, state[f"{name}.conv.weight"], **kwargs)
        x = F.batch_norm(x, bn["running_mean"], bn["running_var"], bn["weight"], bn["bias"], eps=0.001)
        return F.relu(x)

    def inception(x: Tensor, name: str) -> Tensor:
        b1 = conv(x, f"{name}.branch1")
        b2 = conv(conv(x, f"{name}.branch2.0"), f"{name}.branch2.1", padding=1)
        b3 = conv(conv(x, f"{name}.branch3.0"), f"{name}.branch3.1", padding=1)  # torchvision's 3x3 "5x5"
        b4 = conv(F.max_pool2d(x, 3, stride=1, padding=1, ceil_mode=True), f"{name}.branch4.1")
        return torch.cat([b1, b2, b3, b4], 1)

    channels = [
        x[:, 0:1] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5,
        x[:, 1:2] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5,
        x[:, 2:3] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5,
    ]
    x = conv(torch.cat(channels, 1), "conv1", stride=2, padding=3)
    x = F.max_pool2d(x, 3, stride=2, ceil_mode=True)
    x = conv(conv(x, "conv2"), "conv3", padding=1)
    x = F.max_pool2d(x, 3, stride=2, ceil_mode=True)
    x = F.max_pool2d(inception(inception(x, "inception3a"), "inception3b"), 3, stride=2, ceil_mode=True)
    for name in ("4a", "4b", "4c", "4d", "4e"):
        x = inception(x, f"inception{name}")
    x = F.max_pool2d(x, 2, stride=2, ceil_mode=True)
    x = inception(inception(x, "inception5a"), "inception5b")
    return F.linear(x.mean((2, 3)), state["fc.weight"], state["fc.bias"])


def test_torchvision_state_dict_loads_strictly_and_gives_torchvision_outputs() -> None:
    state = random_state_dict(torchvision_layouts()["googlenet"]["state_dict"])
    model = models.create_model("googlenet_torchvision", transform_input=True).eval()
    model.load_state_dict(state, strict=True)
    # 113 is odd all the way down, so every ceil-mode pool keeps a partial window.
    x = torch.randn(2, 3, 113, 113, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(x)
        expected = _reference_forward(state, x)
    assert out.shape == (2, 1000)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


def test_torchvision_weights_with_aux_load_into_the_aux_model() -> None:
    state = random_state_dict(torchvision_layouts()["googlenet_aux"]["state_dict"])
    model = meta_model("googlenet_torchvision", aux_logits=True)
    # assign=True puts the real tensors in place of the meta ones; keys and shapes are still checked.
    model.load_state_dict(state, strict=True, assign=True)
    assert model.aux2.fc2.weight.device.type == "cpu"


@pytest.mark.parametrize("name", NAMES)
def test_output_shapes_at_canonical_size(name: str) -> None:
    model = meta_model(name).eval()
    x = torch.empty(2, 3, 224, 224, device="meta")
    assert model.forward_features(x).shape == (2, 1024, 7, 7)
    assert model(x).shape == (2, 1000)
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 1024)


@pytest.mark.parametrize(("name", "minimum"), [("googlenet", 31), ("googlenet_torchvision", 15)])
def test_min_input_size_is_exact(name: str, minimum: int) -> None:
    model = meta_model(name).eval()
    assert model.info.min_input_size == minimum
    assert model(torch.empty(1, 3, minimum, minimum, device="meta")).shape == (1, 1000)
    with pytest.raises(models.InputSizeError, match=f"at least {minimum}x{minimum}"):
        model(torch.empty(1, 3, minimum - 1, minimum - 1, device="meta"))
    # Without the registry's check, torch itself fails one pixel below: the minimum is not conservative.
    with pytest.raises(RuntimeError, match="too small"):
        model.forward_features(torch.empty(1, 3, minimum - 1, minimum - 1, device="meta"))


@pytest.mark.parametrize("name", NAMES)
def test_aux_outputs_in_training_and_logits_in_eval(name: str) -> None:
    model = meta_model(name, aux_logits=True, num_classes=10).train()
    x = torch.empty(2, 3, 224, 224, device="meta")
    out = model(x)
    assert isinstance(out, GoogLeNetOutputs)
    assert out._fields == ("logits", "aux_logits2", "aux_logits1")
    assert all(t is not None and t.shape == (2, 10) for t in out)
    model.eval()
    logits = model(x)
    assert isinstance(logits, Tensor) and logits.shape == (2, 10)


def test_paper_aux_heads_train_at_small_resolutions() -> None:
    model = meta_model("googlenet", aux_logits=True).train()
    for side in (32, 64, 224, 320):
        out = model(torch.empty(2, 3, side, side, device="meta"))
        assert [tuple(t.shape) for t in out] == [(2, 1000)] * 3


def test_without_aux_training_returns_logits() -> None:
    model = meta_model("googlenet").train()
    assert model.aux1 is None and model.aux2 is None and not model.aux_logits
    assert isinstance(model(torch.empty(2, 3, 224, 224, device="meta")), Tensor)


def test_paper_network_follows_table_1() -> None:
    model = meta_model("googlenet", aux_logits=True)
    modules = [m for m in model.modules() if isinstance(m, Inception)]
    assert len(modules) == 9
    assert [m.out_channels for m in modules] == [256, 480, 512, 512, 512, 528, 832, 832, 1024]
    assert all(m.branch3[1].conv.kernel_size == (5, 5) for m in modules)
    # The paper's convs carry biases and have no batch norm; LRN follows pool1 and conv3 (Fig. 3).
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert model.conv1.conv.bias is not None
    assert isinstance(model.lrn1, nn.LocalResponseNorm) and isinstance(model.lrn2, nn.LocalResponseNorm)
    assert model.dropout.p == 0.4 and model.aux1.dropout.p == 0.7
    assert isinstance(model.aux1.pool.pool, nn.AvgPool2d) and model.aux1.pool.pool.kernel_size == 5
    assert model.aux1.conv.conv.out_channels == 128 and model.aux1.fc1.out_features == 1024
    assert GoogLeNet.aux_weight == 0.3
    # Regression pin: Table 1's columns with the conv biases and the 1000-way fc (the paper's ~6.8M
    # leaves out biases and rounds per layer).
    assert n_params(meta_model("googlenet")) == 6_998_552


def test_torchvision_network_keeps_its_departures() -> None:
    model = meta_model("googlenet_torchvision")
    modules = [m for m in model.modules() if isinstance(m, Inception)]
    assert all(m.branch3[1].conv.kernel_size == (3, 3) for m in modules)
    assert all(m.eps == 0.001 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert model.conv1.conv.bias is None
    assert model.dropout.p == 0.2


def test_inception_table_chains() -> None:
    rows = list(INCEPTIONS.values())
    for previous, row in itertools.pairwise(rows):
        assert row[0] == previous[1] + previous[3] + previous[5] + previous[6]


@pytest.mark.parametrize("name", NAMES)
def test_reset_classifier_resets_the_aux_heads_too(name: str) -> None:
    model = meta_model(name, aux_logits=True).train()
    model.reset_classifier(7)
    out = model(torch.empty(2, 3, 224, 224, device="meta"))
    assert [t.shape for t in out] == [(2, 7)] * 3
    assert model.info.num_classes == 7


@pytest.mark.parametrize("name", NAMES)
def test_in_channels(name: str) -> None:
    model = meta_model(name, in_channels=1).eval()
    assert model(torch.empty(1, 1, 224, 224, device="meta")).shape == (1, 1000)
    with pytest.raises(ValueError, match="in_channels=3"):
        meta_model(name, in_channels=1, transform_input=True)


def test_paper_init_keeps_the_signal_without_batch_norm() -> None:
    torch.manual_seed(0)
    model = models.create_model("googlenet").eval()
    with torch.no_grad():
        features = model.forward_features(torch.randn(1, 3, 224, 224))
    assert features.std() > 0.01
