"""MobileNet v2 (Sandler et al., 2018): inverted residuals with linear bottlenecks.

Module names and shapes are torchvision's ``mobilenet_v2`` (3,504,872 parameters), so its
ImageNet weights load with ``load_state_dict(strict=True)`` and give the same outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from torch import Tensor, nn

from ._base import Classifier
from ._layers import ConvNormAct, init_weights, make_divisible
from ._registry import Paper, register_model

__all__ = ["InvertedResidual", "MobileNetV2", "mobilenet_v2"]

MOBILENET_V2_PAPER = Paper(
    title="MobileNetV2: Inverted Residuals and Linear Bottlenecks",
    authors="Sandler, Howard, Zhu, Zhmoginov, Chen",
    year=2018,
    url="https://arxiv.org/abs/1801.04381",
)

# Table 2 of the paper: expansion t, output channels c, repeats n, stride s of the first repeat.
# 17 bottleneck blocks between a 3x3/2 conv of 32 and a 1x1 conv of 1280.
# t, c, n, s
INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280


class InvertedResidual(nn.Module):
    """1x1 expansion by ``t``, 3x3 depthwise, 1x1 linear projection; identity shortcut when shapes allow.

    The projection has no activation (the "linear bottleneck", Section 3.2: ReLU on the narrow
    representation destroys information). With ``t == 1`` there is no expansion conv, so the
    children of ``conv`` shift down by one, as in torchvision.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        expand_ratio: int,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU6,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        hidden = round(in_channels * expand_ratio)
        self.use_res_connect = stride == 1 and in_channels == out_channels
        conv = partial(ConvNormAct, norm_layer=norm_layer, act_layer=act_layer)
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv(in_channels, hidden, 1))
        layers += [
            conv(hidden, hidden, 3, stride, groups=hidden),
            # A bare conv and norm, not a ConvNormAct: torchvision names them conv.N and conv.N+1.
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            norm_layer(out_channels),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(Classifier):
    """MobileNet v2 built from a ``t, c, n, s`` table.

    ``width_mult`` scales every channel count, rounded to multiples of ``round_nearest``; the last
    conv keeps its 1280 channels below width 1.0, as the paper does for multipliers below one.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        width_mult: float = 1.0,
        inverted_residual_setting: Sequence[Sequence[int]] = INVERTED_RESIDUAL_SETTING,
        round_nearest: int = 8,
        dropout: float = 0.2,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU6,
    ) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be > 0, got {width_mult}")
        if not inverted_residual_setting:
            raise ValueError("inverted_residual_setting must have at least one row, got an empty table")
        for row in inverted_residual_setting:
            if len(row) != 4 or min(row) < 1 or row[3] not in (1, 2):
                raise ValueError(f"each row must be (t, c, n, s), all positive, s in (1, 2); got {row}")

        channels = make_divisible(STEM_CHANNELS * width_mult, round_nearest)
        last_channels = make_divisible(LAST_CHANNELS * max(1.0, width_mult), round_nearest)
        conv = partial(ConvNormAct, norm_layer=norm_layer, act_layer=act_layer)
        features: list[nn.Module] = [conv(in_channels, channels, 3, stride=2)]
        for t, c, n, s in inverted_residual_setting:
            out_channels = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                stride = s if i == 0 else 1
                features.append(InvertedResidual(channels, out_channels, stride, t, norm_layer, act_layer))
                channels = out_channels
        features.append(conv(channels, last_channels, 1))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last_channels, num_classes))
        init_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.avgpool(x).flatten(1)
        return self.classifier[:-1](x) if pre_logits else self.classifier(x)


@register_model(
    family="mobilenet",
    paper=MOBILENET_V2_PAPER,
    input_size=(3, 224, 224),
    # "Same" padding lets any side run; we state the total stride, 32, below which the last
    # blocks would see little but padding.
    min_input_size=32,
    num_classes=1000,
    classifier="classifier.1",
    torchvision="mobilenet_v2",
)
def mobilenet_v2(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> MobileNetV2:
    """MobileNet v2 (Sandler et al., 2018): 17 inverted-residual blocks, 3,504,872 parameters.

    Options: ``width_mult``, ``dropout``, ``inverted_residual_setting``, ``norm_layer``, ``act_layer``.
    """
    return MobileNetV2(num_classes=num_classes, in_channels=in_channels, **kwargs)
