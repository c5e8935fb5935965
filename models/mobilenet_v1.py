"""MobileNet v1 (Howard et al., 2017): a 3x3 conv, 13 depthwise-separable blocks, pool, FC.

torchvision has no MobileNet v1; the layout follows Table 1 of the paper, and the width
multiplier follows the reference TF-slim ``mobilenet_v1.py``. At width 1.0 and 224x224 the
network has 4,231,976 parameters and about 569M multiply-adds, the paper's 4.2M and 569M.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from torch import Tensor, nn

from ._base import Classifier
from ._layers import ConvNormAct, init_weights
from ._registry import Paper, register_model

__all__ = ["DepthwiseSeparable", "MobileNetV1", "mobilenet_v1"]

MOBILENET_V1_PAPER = Paper(
    title="MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications",
    authors="Howard, Zhu, Chen, Kalenichenko, Wang, Weyand, Andreetto, Adam",
    year=2017,
    url="https://arxiv.org/abs/1704.04861",
)

# Table 1 of the paper: output channels and depthwise stride of each separable block, after a
# 3x3/2 conv of 32. The table gives the last block stride 2, but its output stays 7x7: a typo
# the reference implementation (and every port) reads as stride 1.
# c, s
MOBILENET_V1_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)
STEM_CHANNELS = 32


class DepthwiseSeparable(nn.Module):
    """3x3 depthwise conv + BN + ReLU, then 1x1 pointwise conv + BN + ReLU (Figure 3 of the paper).

    Filtering and combining are split: ``9 * C_in + C_in * C_out`` weights instead of
    ``9 * C_in * C_out``, i.e. ``1/C_out + 1/9`` of a full 3x3 conv's cost (Section 3.1).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        conv = partial(ConvNormAct, norm_layer=norm_layer, act_layer=act_layer)
        self.depthwise = conv(in_channels, in_channels, 3, stride, groups=in_channels)
        self.pointwise = conv(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(x))


class MobileNetV1(Classifier):
    """MobileNet with width multiplier ``alpha`` and a canonical input side ``resolution``.

    ``alpha`` thins every layer (Section 4.2; the paper uses 1.0, 0.75, 0.5, 0.25). ``resolution``
    is the paper's resolution multiplier (4.3; 224, 192, 160, 128): the layers do not depend on it
    (global pooling takes any size), it is the size the network is meant to be trained and run at,
    and the registry records it as the canonical input size.

    All 4,231,976 parameters at alpha 1.0 with 1000 classes: 3,185,088 conv weights (no conv
    bias, BN follows every conv), 21,888 BN scales and shifts (10,944 channels), and the FC's
    1,025,000 weights and biases. BN running means and variances are buffers, not parameters; they
    are the 21,888 "non-trainable params" Keras adds to reach its total of 4,253,864.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        alpha: float = 1.0,
        resolution: int = 224,
        dropout: float = 1e-3,
        blocks: Sequence[tuple[int, int]] = MOBILENET_V1_BLOCKS,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"width multiplier alpha must be > 0, got {alpha}")
        if resolution < 32:
            raise ValueError(f"resolution must be at least the total stride 32, got {resolution}")
        if not blocks:
            raise ValueError("MobileNet v1 needs at least one separable block, got an empty table")
        for row in blocks:
            if len(row) != 2 or row[0] < 1 or row[1] not in (1, 2):
                raise ValueError(f"each block row must be (channels >= 1, stride 1 or 2), got {row}")
        self.resolution = resolution

        def width(channels: int) -> int:
            # TF-slim's rule: truncate, but keep at least 8 channels (its min_depth).
            return max(8, int(channels * alpha))

        channels = width(STEM_CHANNELS)
        layers: list[nn.Module] = [
            ConvNormAct(in_channels, channels, 3, stride=2, norm_layer=norm_layer, act_layer=act_layer)
        ]
        for out_channels, stride in blocks:
            layers.append(DepthwiseSeparable(channels, width(out_channels), stride, norm_layer, act_layer))
            channels = width(out_channels)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        # The paper names no dropout; TF-slim's reference keeps 0.999 of the pooled features.
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))
        init_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.avgpool(x).flatten(1)
        return self.classifier[:-1](x) if pre_logits else self.classifier(x)


@register_model(
    family="mobilenet",
    paper=MOBILENET_V1_PAPER,
    input_size=(3, 224, 224),
    # "Same" padding lets any side run; we state the total stride, 32, below which the last
    # blocks would see little but padding.
    min_input_size=32,
    num_classes=1000,
    classifier="classifier.1",
)
def mobilenet_v1(
    *, num_classes: int = 1000, in_channels: int = 3, width_mult: float | None = None, **kwargs: Any
) -> MobileNetV1:
    """MobileNet v1 (Howard et al., 2017): depthwise-separable convs, 4.2M parameters, 569M mult-adds.

    Options: ``alpha`` (width multiplier; ``width_mult``, the name the other families use, is
    accepted for it), ``resolution`` (canonical input side), ``dropout``.
    """
    if width_mult is not None:
        if "alpha" in kwargs:
            raise ValueError(f"give alpha or width_mult, not both (got {kwargs['alpha']} and {width_mult})")
        kwargs["alpha"] = width_mult
    return MobileNetV1(num_classes=num_classes, in_channels=in_channels, **kwargs)
