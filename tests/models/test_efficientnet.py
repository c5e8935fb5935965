"""EfficientNet B0-B7: torchvision's layout and counts, compound scaling, stochastic depth."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import models
from models._layers import StochasticDepth
from models.efficientnet import MBConv, MBConvConfig, compound_scaling, efficientnet_custom
from tests.models.helpers import meta_model, n_params, random_state_dict, state_layout
from tests.reference import torchvision_layouts

VARIANTS = [f"efficientnet_b{i}" for i in range(8)]
RESOLUTIONS = dict(zip(VARIANTS, (224, 240, 260, 300, 380, 456, 528, 600), strict=True))
DROPOUT = dict(zip(VARIANTS, (0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.5, 0.5), strict=True))


@pytest.mark.parametrize("name", VARIANTS)
def test_matches_torchvision_layout(name: str) -> None:
    reference = torchvision_layouts()[name]
    model = meta_model(name)
    assert model.info.torchvision == name
    assert n_params(model) == reference["params"]
    assert state_layout(model) == reference["state_dict"]


@pytest.mark.parametrize("name", VARIANTS)
def test_canonical_size_dropout_and_norm(name: str) -> None:
    model = meta_model(name)
    side = RESOLUTIONS[name]
    assert model.info.input_size == (3, side, side)
    assert model(torch.empty(1, 3, side, side, device="meta")).shape == (1, 1000)
    assert model.classifier[0].p == DROPOUT[name]
    # B5-B7 keep TensorFlow's batch norm, as torchvision does for their ported weights.
    bn = model.features[0][1]
    tf_bn = name in ("efficientnet_b5", "efficientnet_b6", "efficientnet_b7")
    assert (bn.eps, bn.momentum) == ((1e-3, 0.01) if tf_bn else (1e-5, 0.1))


def test_b0_loads_a_torchvision_state_dict_strictly() -> None:
    model = models.create_model("efficientnet_b0").eval()
    state = random_state_dict(torchvision_layouts()["efficientnet_b0"]["state_dict"])
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        x = torch.randn(2, 3, 224, 224)
        out = model(x)
        assert torch.equal(out, model(x))  # eval: stochastic depth and dropout are off
    assert out.shape == (2, 1000) and torch.isfinite(out).all()


def test_stochastic_depth_grows_linearly_with_block_index() -> None:
    blocks = [m for m in meta_model("efficientnet_b0").modules() if isinstance(m, MBConv)]
    assert len(blocks) == 16
    assert [b.stochastic_depth.p for b in blocks] == pytest.approx([0.2 * i / 16 for i in range(16)])


def test_stochastic_depth_drops_whole_samples_while_training() -> None:
    drop = StochasticDepth(0.5)
    x = torch.ones(1000, 4, 2, 2)
    kept = drop(x).flatten(1)
    assert set(kept.unique().tolist()) == {0.0, 2.0}  # kept rows scaled by 1 / (1 - p)
    assert (kept == kept[:, :1]).all()  # one decision per sample
    assert torch.equal(drop.eval()(x), x)
    with pytest.raises(ValueError, match=r"1\.5"):
        StochasticDepth(1.5)


def test_compound_scaling_at_phi_0_is_b0() -> None:
    scaling = compound_scaling(0)
    assert (scaling.depth_mult, scaling.width_mult, scaling.resolution) == (1.0, 1.0, 224)
    with torch.device("meta"):
        model = efficientnet_custom(phi=0)
    reference = torchvision_layouts()["efficientnet_b0"]
    assert n_params(model) == reference["params"]
    assert state_layout(model) == reference["state_dict"]


def test_compound_scaling_at_phi_1() -> None:
    scaling = compound_scaling(1)
    assert scaling.depth_mult == pytest.approx(1.2)
    assert scaling.width_mult == pytest.approx(1.1)
    assert scaling.resolution == 258  # 224 * 1.15 = 257.6
    with torch.device("meta"):
        model = efficientnet_custom(phi=1, num_classes=10)
    assert model.info.input_size == (3, 258, 258) and model.info.torchvision is None
    assert model(torch.empty(1, 3, 258, 258, device="meta")).shape == (1, 10)
    model.reset_classifier(7)
    assert model(torch.empty(1, 3, 258, 258, device="meta")).shape == (1, 7)
    # Deeper and wider than B0, and so larger than the published B1 (depth 1.1, width 1.0).
    assert n_params(model) > n_params(meta_model("efficientnet_b1", num_classes=10))
    with pytest.raises(ValueError, match="-1"):
        compound_scaling(-1)


def test_mbconv_config_is_validated() -> None:
    with pytest.raises(ValueError, match="stride must be 1 or 2, got 3"):
        MBConvConfig(6, 3, 3, 16, 24, 2)
    with pytest.raises(ValueError, match="kernel must be odd"):
        MBConvConfig(6, 4, 1, 16, 24, 2)


def test_head_options() -> None:
    model = meta_model("efficientnet_b0", in_channels=1)
    x = torch.empty(1, 1, 224, 224, device="meta")
    assert model(x).shape == (1, 1000)
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (1, 1280)
    model.reset_classifier(7)
    assert isinstance(model.get_classifier(), nn.Linear)
    assert model(x).shape == (1, 7) and model.info.num_classes == 7
