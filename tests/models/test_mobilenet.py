"""MobileNet v1 and v2: the papers' numbers, torchvision's layout, depthwise-separable costs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

import models
from models.mobilenet_v2 import InvertedResidual
from tests.models.helpers import meta_model, multiply_adds, n_params, random_state_dict, state_layout
from tests.reference import torchvision_layouts

# --- MobileNet v1 -----------------------------------------------------------------------------


def test_mobilenet_v1_parameter_count() -> None:
    # Conv weights 3,185,088 + BN scale/shift 21,888 + FC 1,025,000 (BN running stats are buffers).
    assert n_params(meta_model("mobilenet_v1")) == 4_231_976


@pytest.mark.parametrize(
    ("alpha", "paper_params", "paper_madds"),
    # Table 6 of the paper: width multiplier, million parameters, million mult-adds at 224.
    [(1.0, 4.2, 569), (0.75, 2.6, 325), (0.5, 1.3, 149), (0.25, 0.5, 41)],
)
def test_mobilenet_v1_width_multiplier_matches_table_6(alpha: float, paper_params: float, paper_madds: int) -> None:
    model = meta_model("mobilenet_v1", alpha=alpha)
    assert n_params(model) / 1e6 == pytest.approx(paper_params, abs=0.05)
    assert multiply_adds(model, 224) / 1e6 == pytest.approx(paper_madds, abs=1)


@pytest.mark.parametrize(
    ("resolution", "paper_madds"),
    # Table 7 of the paper: resolution, million mult-adds (4.2M parameters throughout).
    [(224, 569), (192, 418), (160, 290), (128, 186)],
)
def test_mobilenet_v1_resolution_multiplier_matches_table_7(resolution: int, paper_madds: int) -> None:
    model = meta_model("mobilenet_v1", resolution=resolution)
    assert model.info.input_size == (3, resolution, resolution)
    assert multiply_adds(model, resolution) / 1e6 == pytest.approx(paper_madds, abs=1)
    assert n_params(model) == 4_231_976


def test_mobilenet_v1_width_mult_is_alpha() -> None:
    half = n_params(meta_model("mobilenet_v1", alpha=0.5))
    assert n_params(meta_model("mobilenet_v1", width_mult=0.5)) == half
    with pytest.raises(ValueError, match="not both"):
        meta_model("mobilenet_v1", width_mult=0.5, alpha=0.5)


@pytest.mark.parametrize(
    ("options", "bad"),
    [({"alpha": 0.0}, "0.0"), ({"resolution": 16}, "16"), ({"blocks": [(64, 3)]}, r"\(64, 3\)")],
)
def test_mobilenet_v1_rejects_bad_configuration(options: dict, bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        meta_model("mobilenet_v1", **options)


def test_depthwise_separable_cost_of_the_cnn_course() -> None:
    """6x6x3 -> 4x4x5 with 3x3 filters: 2,160 multiplies, or 432 + 240 = 672 when separated."""

    def multiplies(conv: nn.Conv2d, x: Tensor) -> int:
        out = conv(x)
        return out[0].numel() * conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1]

    x = torch.randn(1, 3, 6, 6)
    normal = nn.Conv2d(3, 5, 3, bias=False)
    depthwise = nn.Conv2d(3, 3, 3, groups=3, bias=False)
    pointwise = nn.Conv2d(3, 5, 1, bias=False)
    assert normal(x).shape == pointwise(depthwise(x)).shape == (1, 5, 4, 4)
    assert multiplies(normal, x) == 2160
    assert multiplies(depthwise, x) == 432
    assert multiplies(pointwise, depthwise(x)) == 240
    # The ratio of the CNN course (and Section 3.1 of the paper): 1/n_c' + 1/f^2.
    assert pytest.approx(1 / 5 + 1 / 9) == (432 + 240) / 2160


# --- MobileNet v2 -----------------------------------------------------------------------------


def test_mobilenet_v2_matches_torchvision_layout() -> None:
    reference = torchvision_layouts()["mobilenet_v2"]
    model = meta_model("mobilenet_v2")
    assert n_params(model) == reference["params"] == 3_504_872
    assert state_layout(model) == reference["state_dict"]
    # 17 bottleneck blocks between the stem (features.0) and the 1x1 head conv (features.18).
    assert sum(isinstance(m, InvertedResidual) for m in model.features) == 17


def test_mobilenet_v2_loads_a_torchvision_state_dict_strictly() -> None:
    model = models.create_model("mobilenet_v2").eval()
    state = random_state_dict(torchvision_layouts()["mobilenet_v2"]["state_dict"])
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 224, 224))
    assert out.shape == (2, 1000) and torch.isfinite(out).all()


def test_mobilenet_v2_width_multiplier_keeps_the_last_conv() -> None:
    model = meta_model("mobilenet_v2", width_mult=0.5)
    assert n_params(model) < 3_504_872
    assert model.features[0][0].out_channels == 16 and model.features[-1][0].out_channels == 1280


@pytest.mark.parametrize(
    ("options", "bad"),
    [({"width_mult": -1.0}, "-1.0"), ({"inverted_residual_setting": [(6, 24, 2, 3)]}, r"\(6, 24, 2, 3\)")],
)
def test_mobilenet_v2_rejects_bad_configuration(options: dict, bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        meta_model("mobilenet_v2", **options)


# --- Both -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2"])
def test_head_options(name: str) -> None:
    model = meta_model(name, in_channels=1)
    x = torch.empty(1, 1, 224, 224, device="meta")
    assert model(x).shape == (1, 1000)
    features = model.forward_head(model.forward_features(x), pre_logits=True)
    assert features.shape[1] == model.get_classifier().in_features
    model.reset_classifier(7)
    assert model(x).shape == (1, 7) and model.info.num_classes == 7
