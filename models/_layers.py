"""Layers shared by the mobile families (MobileNet v1/v2, EfficientNet).

They reproduce torchvision's ``ops.misc.Conv2dNormActivation``, ``ops.misc.SqueezeExcitation``,
``ops.StochasticDepth`` and ``models._utils._make_divisible`` in module names and forward
semantics, so that torchvision's state_dicts load into our networks unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["ConvNormAct", "SqueezeExcitation", "StochasticDepth", "init_weights", "make_divisible"]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, never going below 90% of it.

    The rule of TensorFlow's MobileNet code, which torchvision's ``_make_divisible`` copies;
    every width-multiplied channel count of MobileNet v2 and EfficientNet goes through it.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvNormAct(nn.Sequential):
    """conv, norm, activation as one Sequential: children "0", "1", "2" as in Conv2dNormActivation.

    "Same" padding for odd kernels; no conv bias, since the norm layer's shift absorbs it.
    ``act_layer`` is built with ``inplace=True`` as torchvision does; ``None`` leaves the activation
    out (the linear projection of EfficientNet's MBConv).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] | None = nn.ReLU,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=(kernel_size - 1) // 2,
                groups=groups,
                bias=False,
            ),
            norm_layer(out_channels),
        ]
        if act_layer is not None:
            layers.append(act_layer(inplace=True))
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(nn.Module):
    """Channel gating of Hu et al. (2018): ``x * gate(fc2(act(fc1(avgpool(x)))))``.

    The two "fully connected" layers are 1x1 convs with bias named ``fc1``/``fc2``, as in torchvision.
    """

    def __init__(
        self,
        channels: int,
        squeeze_channels: int,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
        gate_layer: Callable[[], nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = act_layer(inplace=True)
        self.scale_activation = gate_layer()

    def forward(self, x: Tensor) -> Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return self.scale_activation(scale) * x


class StochasticDepth(nn.Module):
    """Drop a residual branch per sample with probability ``p`` while training (Huang et al., 2016).

    torchvision's "row" mode: each sample of the batch keeps or drops the whole branch, and kept
    branches are scaled by ``1 / (1 - p)`` so that evaluation, which keeps every branch, needs no
    rescaling.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        keep = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            keep.div_(survival)
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _small_normal(layer: nn.Linear) -> None:
    nn.init.normal_(layer.weight, 0.0, 0.01)
    nn.init.zeros_(layer.bias)


def init_weights(model: nn.Module, init_linear: Callable[[nn.Linear], None] = _small_normal) -> None:
    """torchvision's initialisation of its mobile networks; only the Linear rule differs between them.

    Convs: He normal with fan_out (He et al., 2015), zero bias; norms: identity (weight 1, bias 0);
    Linear: N(0, 0.01) and zero bias unless ``init_linear`` says otherwise (MobileNet v2's rule).
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            init_linear(m)
