"""ResNet: torchvision's layout and counts exactly, its forward semantics, the registry surface."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import models
from models.resnet import BasicBlock, Bottleneck, ResNet
from tests.models.helpers import meta_model, n_params, random_state_dict, state_layout
from tests.reference import torchvision_layouts

PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}


@pytest.mark.parametrize("name", list(PARAMS))
def test_param_count_and_state_dict_equal_torchvision(name: str) -> None:
    model = meta_model(name)
    reference = torchvision_layouts()[name]
    assert n_params(model) == PARAMS[name] == reference["params"]
    assert state_layout(model) == reference["state_dict"]
    assert model.info.torchvision == name


def _reference_forward(state: dict[str, Tensor], x: Tensor) -> Tensor:
    """torchvision's ResNet forward in functional ops over its state_dict, apart from models/."""

    def conv(x: Tensor, name: str, stride: int = 1) -> Tensor:
        weight = state[f"{name}.weight"]
        return F.conv2d(x, weight, stride=stride, padding=weight.shape[-1] // 2)

    def bn(x: Tensor, name: str) -> Tensor:
        s = {k: state[f"{name}.{k}"] for k in ("running_mean", "running_var", "weight", "bias")}
        return F.batch_norm(x, s["running_mean"], s["running_var"], s["weight"], s["bias"], eps=1e-5)

    bottleneck = "layer1.0.conv3.weight" in state
    x = F.max_pool2d(F.relu(bn(conv(x, "conv1", 2), "bn1")), 3, stride=2, padding=1)
    for stage in range(1, 5):
        i = 0
        while f"layer{stage}.{i}.conv1.weight" in state:
            b = f"layer{stage}.{i}"
            stride = 2 if stage > 1 and i == 0 else 1
            if bottleneck:  # v1.5: the stride on the 3x3
                out = F.relu(bn(conv(x, f"{b}.conv1"), f"{b}.bn1"))
                out = F.relu(bn(conv(out, f"{b}.conv2", stride), f"{b}.bn2"))
                out = bn(conv(out, f"{b}.conv3"), f"{b}.bn3")
            else:
                out = F.relu(bn(conv(x, f"{b}.conv1", stride), f"{b}.bn1"))
                out = bn(conv(out, f"{b}.conv2"), f"{b}.bn2")
            if f"{b}.downsample.0.weight" in state:
                x = bn(conv(x, f"{b}.downsample.0", stride), f"{b}.downsample.1")
            x = F.relu(out + x)
            i += 1
    return F.linear(x.mean((2, 3)), state["fc.weight"], state["fc.bias"])


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_state_dict_loads_strictly_and_gives_torchvision_outputs(name: str) -> None:
    state = random_state_dict(torchvision_layouts()[name]["state_dict"])
    model = models.create_model(name).eval()
    model.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(x)
        expected = _reference_forward(state, x)
    assert out.shape == (2, 1000)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


@pytest.mark.parametrize("name", list(PARAMS))
def test_output_shape_at_canonical_size(name: str) -> None:
    model = meta_model(name)
    assert model(torch.empty(2, 3, 224, 224, device="meta")).shape == (2, 1000)
    features = model.forward_features(torch.empty(1, 3, 224, 224, device="meta"))
    assert features.shape == (1, model.num_features, 7, 7)
    assert model.forward_head(features, pre_logits=True).shape == (1, model.num_features)


def test_min_input_size() -> None:
    model = meta_model("resnet18").eval()  # a train-mode BN cannot take layer4's single 1x1 value at 32
    assert model.info.min_input_size == 32
    assert model(torch.empty(1, 3, 32, 32, device="meta")).shape == (1, 1000)
    with pytest.raises(models.InputSizeError, match="at least 32x32"):
        model(torch.empty(1, 3, 31, 31, device="meta"))


def test_reset_classifier_and_in_channels() -> None:
    model = meta_model("resnet50", in_channels=1)
    assert model.conv1.in_channels == 1
    model.reset_classifier(7)
    assert model.get_classifier().out_features == 7
    assert model(torch.empty(1, 1, 224, 224, device="meta")).shape == (1, 7)
    assert model.info.num_classes == 7


def test_zero_init_residual_makes_each_block_relu_of_its_shortcut() -> None:
    torch.manual_seed(0)
    model = models.create_model("resnet18", zero_init_residual=True).eval()
    assert all((b.bn2.weight == 0).all() for b in model.modules() if isinstance(b, BasicBlock))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        # Eval-mode BN at init is the identity and the residual branches output zero, so every block is
        # ReLU(shortcut): identity blocks pass their (non-negative) input through unchanged, and the
        # whole backbone reduces to the stem followed by the three projection shortcuts.
        stem = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        torch.testing.assert_close(model.layer1(stem), stem)
        expected = stem
        for stage in (model.layer2, model.layer3, model.layer4):
            assert stage[0].downsample is not None
            expected = torch.relu(stage[0].downsample(expected))
        out = model.forward_features(x)
    assert out.abs().sum() > 0
    torch.testing.assert_close(out, expected)


def test_residual_branch_is_live_without_zero_init() -> None:
    torch.manual_seed(0)
    block = models.create_model("resnet18").eval().layer1[0]
    x = torch.rand(1, 64, 8, 8)
    with torch.no_grad():
        branch = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
        torch.testing.assert_close(block(x), torch.relu(branch + x))
    assert not torch.allclose(block(x), torch.relu(x))


def test_bottleneck_strides_on_its_3x3_conv() -> None:
    model = meta_model("resnet50")
    first = model.layer2[0]
    assert isinstance(first, Bottleneck)
    assert first.conv1.stride == (1, 1) and first.conv2.stride == (2, 2)
    assert first.downsample[0].stride == (2, 2)


def test_norm_layer_is_passed_through() -> None:
    with torch.device("meta"):
        model = models.create_model("resnet18", norm_layer=lambda c: torch.nn.GroupNorm(32, c))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_bad_layers_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"\[2, 2, 2\]"):
        ResNet(BasicBlock, [2, 2, 2])
