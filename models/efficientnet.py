"""EfficientNet B0-B7 (Tan & Le, 2019): MBConv blocks with squeeze-and-excitation, scaled in
depth, width and resolution together.

Module names and shapes are torchvision's ``efficientnet_b0`` ... ``efficientnet_b7``, so their
ImageNet weights load with ``load_state_dict(strict=True)`` and give the same outputs.
:func:`efficientnet_custom` applies the paper's compound scaling rule for any ``phi``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from torch import Tensor, nn

from ._base import Classifier
from ._layers import ConvNormAct, SqueezeExcitation, StochasticDepth, init_weights, make_divisible
from ._registry import Paper, _describe, get_model_info, register_model

__all__ = [
    "B0_STAGES",
    "EFFICIENTNET_VARIANTS",
    "EfficientNet",
    "EfficientNetScaling",
    "MBConv",
    "MBConvConfig",
    "compound_scaling",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
    "efficientnet_custom",
]

EFFICIENTNET_PAPER = Paper(
    title="EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
    authors="Tan, Le",
    year=2019,
    url="https://arxiv.org/abs/1905.11946",
)


@dataclass(frozen=True)
class MBConvConfig:
    """One stage of MBConv blocks: a row of Table 1 of the paper.

    ``stride`` applies to the first block only; the others keep the resolution and take
    ``out_channels`` in.
    """

    expand_ratio: int
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    num_layers: int

    def __post_init__(self) -> None:
        if self.expand_ratio < 1:
            raise ValueError(f"expand_ratio must be >= 1, got {self.expand_ratio} in {self}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd for 'same' padding, got {self.kernel} in {self}")
        if self.stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {self.stride} in {self}")
        if min(self.in_channels, self.out_channels, self.num_layers) < 1:
            raise ValueError(f"channels and num_layers must be >= 1 in {self}")

    def scale(self, width_mult: float, depth_mult: float) -> MBConvConfig:
        """This stage widened and deepened: channels to multiples of 8, repeats rounded up (torchvision)."""
        return replace(
            self,
            in_channels=make_divisible(self.in_channels * width_mult, 8),
            out_channels=make_divisible(self.out_channels * width_mult, 8),
            num_layers=math.ceil(self.num_layers * depth_mult),
        )


# EfficientNet-B0, the baseline found by architecture search (Table 1 of the paper), at 224x224:
# a 3x3/2 conv of 32 (the first stage's input), these stages, a 1x1 conv of 4 * 320 = 1280.
B0_STAGES: tuple[MBConvConfig, ...] = (
    #            t, k, s, in, out, n
    MBConvConfig(1, 3, 1, 32, 16, 1),
    MBConvConfig(6, 3, 2, 16, 24, 2),
    MBConvConfig(6, 5, 2, 24, 40, 2),
    MBConvConfig(6, 3, 2, 40, 80, 3),
    MBConvConfig(6, 5, 1, 80, 112, 3),
    MBConvConfig(6, 5, 2, 112, 192, 4),
    MBConvConfig(6, 3, 1, 192, 320, 1),
)
B0_RESOLUTION = 224


class MBConv(nn.Module):
    """Mobile inverted bottleneck with squeeze-and-excitation (MnasNet's block, Section 4 of the paper).

    ``block``: 1x1 expansion (absent when ``expand_ratio`` is 1), kxk depthwise, SE, linear 1x1
    projection, all with SiLU (the paper's swish). The shortcut, when shapes allow, adds the
    block's output after stochastic depth has dropped it for some samples.
    """

    def __init__(
        self,
        cnf: MBConvConfig,
        stochastic_depth_prob: float,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.SiLU,
    ) -> None:
        super().__init__()
        self.use_res_connect = cnf.stride == 1 and cnf.in_channels == cnf.out_channels
        expanded = make_divisible(cnf.in_channels * cnf.expand_ratio, 8)
        conv = partial(ConvNormAct, norm_layer=norm_layer, act_layer=act_layer)
        layers: list[nn.Module] = []
        if expanded != cnf.in_channels:
            layers.append(conv(cnf.in_channels, expanded, 1))
        layers += [
            conv(expanded, expanded, cnf.kernel, cnf.stride, groups=expanded),
            # The squeeze ratio 0.25 is taken of the block's input channels, not of the expanded ones.
            SqueezeExcitation(expanded, max(1, cnf.in_channels // 4), act_layer=act_layer),
            conv(expanded, cnf.out_channels, 1, act_layer=None),
        ]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob)

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        if self.use_res_connect:
            out = self.stochastic_depth(out) + x
        return out


class EfficientNet(Classifier):
    """Stem conv, one ``features`` Sequential per stage of MBConv blocks, 1x1 head conv, pool, FC.

    The stochastic depth probability grows linearly with the block index, from 0 for the first
    block to ``stochastic_depth_prob * (N - 1) / N`` for the last of N (torchvision's schedule).
    ``resolution`` is the canonical input side, recorded for the registry; the layers do not
    depend on it.
    """

    def __init__(
        self,
        stages: Sequence[MBConvConfig],
        dropout: float,
        num_classes: int = 1000,
        in_channels: int = 3,
        resolution: int = B0_RESOLUTION,
        stochastic_depth_prob: float = 0.2,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.SiLU,
    ) -> None:
        super().__init__()
        if not stages:
            raise ValueError("EfficientNet needs at least one MBConv stage, got an empty table")
        self.resolution = resolution

        conv = partial(ConvNormAct, norm_layer=norm_layer, act_layer=act_layer)
        layers: list[nn.Module] = [conv(in_channels, stages[0].in_channels, 3, stride=2)]
        total_blocks = sum(stage.num_layers for stage in stages)
        block_id = 0
        for stage in stages:
            blocks: list[nn.Module] = []
            for i in range(stage.num_layers):
                cnf = stage if i == 0 else replace(stage, in_channels=stage.out_channels, stride=1)
                sd_prob = stochastic_depth_prob * block_id / total_blocks
                blocks.append(MBConv(cnf, sd_prob, norm_layer, act_layer))
                block_id += 1
            layers.append(nn.Sequential(*blocks))
        head_channels = 4 * stages[-1].out_channels
        layers.append(conv(stages[-1].out_channels, head_channels, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(head_channels, num_classes))
        init_weights(self, init_linear=_init_linear)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.avgpool(x).flatten(1)
        return self.classifier[:-1](x) if pre_logits else self.classifier(x)


def _init_linear(layer: nn.Linear) -> None:
    # torchvision's rule for EfficientNet: uniform in +-1/sqrt(fan_out), zero bias.
    bound = 1.0 / math.sqrt(layer.out_features)
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.zeros_(layer.bias)


@dataclass(frozen=True)
class EfficientNetScaling:
    """How a variant scales B0: multipliers of width and depth, its input side, its dropout, its norm."""

    width_mult: float
    depth_mult: float
    resolution: int
    dropout: float
    norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d

    def __post_init__(self) -> None:
        if self.width_mult <= 0 or self.depth_mult <= 0 or self.resolution < 1:
            raise ValueError(f"multipliers and resolution must be positive, got {self}")


# torchvision's B5-B7 weights are ports of the original TensorFlow checkpoints and keep TF's batch
# norm (epsilon 1e-3, decay 0.99); its B0-B4 weights were trained with PyTorch's defaults.
_TF_BATCHNORM = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)

# The published coefficients (the official repo's efficientnet_params, as in torchvision). They are
# hand-rounded, not the compound rule at integer phi: see compound_scaling.
EFFICIENTNET_VARIANTS: dict[str, EfficientNetScaling] = {
    #                        width, depth, resolution, dropout
    "b0": EfficientNetScaling(1.0, 1.0, 224, 0.2),
    "b1": EfficientNetScaling(1.0, 1.1, 240, 0.2),
    "b2": EfficientNetScaling(1.1, 1.2, 260, 0.3),
    "b3": EfficientNetScaling(1.2, 1.4, 300, 0.3),
    "b4": EfficientNetScaling(1.4, 1.8, 380, 0.4),
    "b5": EfficientNetScaling(1.6, 2.2, 456, 0.4, _TF_BATCHNORM),
    "b6": EfficientNetScaling(1.8, 2.6, 528, 0.5, _TF_BATCHNORM),
    "b7": EfficientNetScaling(2.0, 3.1, 600, 0.5, _TF_BATCHNORM),
}

# The compound rule (Section 3.3, equation 3): depth alpha**phi, width beta**phi, resolution
# gamma**phi, with alpha * beta**2 * gamma**2 ~= 2 so that FLOPS roughly double per unit of phi;
# these are the values the paper's grid search found for B0.
COMPOUND_ALPHA, COMPOUND_BETA, COMPOUND_GAMMA = 1.2, 1.1, 1.15


def compound_scaling(phi: float, *, dropout: float = 0.2) -> EfficientNetScaling:
    """B0 scaled by the paper's compound rule: depth 1.2**phi, width 1.1**phi, side 224 * 1.15**phi.

    ``phi=0`` is exactly B0. The published B1-B7 do not follow the rule at integer ``phi``
    (B1 is depth 1.1, width 1.0, where phi=1 gives 1.2, 1.1): the authors rounded and tuned
    each variant, and :data:`EFFICIENTNET_VARIANTS` keeps their values. The multipliers are
    left unrounded (each layer rounds its own channel and repeat counts); the side is rounded
    to the nearest pixel.
    """
    if phi < 0:
        raise ValueError(f"phi must be >= 0 (B0 is the smallest network of the family), got {phi}")
    return EfficientNetScaling(
        width_mult=COMPOUND_BETA**phi,
        depth_mult=COMPOUND_ALPHA**phi,
        resolution=round(B0_RESOLUTION * COMPOUND_GAMMA**phi),
        dropout=dropout,
    )


def _efficientnet(scaling: EfficientNetScaling, **kwargs: Any) -> EfficientNet:
    stages = [stage.scale(scaling.width_mult, scaling.depth_mult) for stage in B0_STAGES]
    kwargs.setdefault("dropout", scaling.dropout)
    kwargs.setdefault("norm_layer", scaling.norm_layer)
    return EfficientNet(stages, resolution=scaling.resolution, **kwargs)


_register = partial(
    register_model,
    family="efficientnet",
    paper=EFFICIENTNET_PAPER,
    # "Same" padding lets any side run; we state the total stride, 32, below which the last
    # stages would see little but padding.
    min_input_size=32,
    num_classes=1000,
    classifier="classifier.1",
)


@_register(input_size=(3, 224, 224), torchvision="efficientnet_b0")
def efficientnet_b0(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B0 (Tan & Le, 2019): the searched baseline, 224x224, 5,288,548 parameters."""
    scaling = EFFICIENTNET_VARIANTS["b0"]
    return _efficientnet(scaling, num_classes=num_classes, in_channels=in_channels, **kwargs)


@_register(input_size=(3, 240, 240), torchvision="efficientnet_b1")
def efficientnet_b1(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B1 (Tan & Le, 2019): B0 at width 1.0, depth 1.1, 240x240, 7,794,184 parameters."""
    scaling = EFFICIENTNET_VARIANTS["b1"]
    return _efficientnet(scaling, num_classes=num_classes, in_channels=in_channels, **kwargs)


@_register(input_size=(3, 260, 260), torchvision="efficientnet_b2")
def efficientnet_b2(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B2 (Tan & Le, 2019): B0 at width 1.1, depth 1.2, 260x260, 9,109,994 parameters."""
    scaling = EFFICIENTNET_VARIANTS["b2"]
    return _efficientnet(scaling, num_classes=num_classes, in_channels=in_channels, **kwargs)


@_register(input_size=(3, 300, 300), torchvision="efficientnet_b3")
def efficientnet_b3(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B3 (Tan & Le, 2019): B0 at width 1.2, depth 1.4, 300x300, 12,233,232 parameters."""
    scaling = EFFICIENTNET_VARIANTS["b3"]
    return _efficientnet(scaling, num_classes=num_classes, in_channels=in_channels, **kwargs)


@_register(input_size=(3, 380, 380), torchvision="efficientnet_b4")
def efficientnet_b4(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B4 (Tan & Le, 2019): B0 at width 1.4, depth 1.8, 380x380, 19,341,616 parameters."""
    scaling = EFFICIENTNET_VARIANTS["b4"]
    return _efficientnet(scaling, num_classes=num_classes, in_channels=in_channels, **kwargs)


@_register(input_size=(3, 456, 456), torchvision="efficientnet_b5")
def efficientnet_b5(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B5 (Tan & Le, 2019): B0 at width 1.6, depth 2.2, 456x456, 30,389,784 parameters."""
    scaling = EFFICIENTNET_VARIANTS["b5"]
    return _efficientnet(scaling, num_classes=num_classes, in_channels=in_channels, **kwargs)


@_register(input_size=(3, 528, 528), torchvision="efficientnet_b6")
def efficientnet_b6(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B6 (Tan & Le, 2019): B0 at width 1.8, depth 2.6, 528x528, 43,040,704 parameters."""
    scaling = EFFICIENTNET_VARIANTS["b6"]
    return _efficientnet(scaling, num_classes=num_classes, in_channels=in_channels, **kwargs)


@_register(input_size=(3, 600, 600), torchvision="efficientnet_b7")
def efficientnet_b7(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B7 (Tan & Le, 2019): B0 at width 2.0, depth 3.1, 600x600, 66,347,960 parameters."""
    scaling = EFFICIENTNET_VARIANTS["b7"]
    return _efficientnet(scaling, num_classes=num_classes, in_channels=in_channels, **kwargs)


def efficientnet_custom(*, phi: float, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet scaled from B0 by the compound rule at any ``phi`` (:func:`compound_scaling`).

    Not registered (``phi=0`` would duplicate ``efficientnet_b0`` under a second name); the model
    still carries ``info``, B0's description with this network's name and canonical size.
    """
    model = _efficientnet(compound_scaling(phi), num_classes=num_classes, in_channels=in_channels, **kwargs)
    b0 = get_model_info("efficientnet_b0")
    described = _describe(b0, model, {"num_classes": num_classes, "in_channels": in_channels})
    model.info = replace(
        described,
        name=f"efficientnet_custom(phi={phi:g})",
        description=f"EfficientNet-B0 compound-scaled with phi={phi:g}",
        torchvision=None,
        builder=None,
    )
    return model
