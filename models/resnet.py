"""ResNet (He et al., 2015) in torchvision's layout, so that its weight files load unchanged.

Like torchvision (and unlike the paper's Fig. 5), a :class:`Bottleneck` strides on its 3x3 conv rather
than on the first 1x1: the "ResNet v1.5" of NVIDIA's recipes, slightly more accurate and what every
torchvision checkpoint was trained with. Projection shortcuts (the paper's option B) are used only
where the shape changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ._base import Classifier
from ._registry import Paper, register_model

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]

RESNET_PAPER = Paper(
    title="Deep Residual Learning for Image Recognition",
    authors="He, Zhang, Ren, Sun",
    year=2015,
    url="https://arxiv.org/abs/1512.03385",
)

NormLayer = Callable[[int], nn.Module]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    # No bias: the batch norm that follows every conv has its own shift.
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs and a shortcut (paper Fig. 5, left): ResNet-18 and -34."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) and a shortcut (paper Fig. 5, right): ResNet-50 and deeper."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = norm_layer(planes)
        # The stride sits here, not on conv1 as in the paper: torchvision's v1.5 (see the module docstring).
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = norm_layer(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


Block = type[BasicBlock] | type[Bottleneck]


class ResNet(Classifier):
    """Stem (7x7/2 conv, 3x3/2 max pool), four stages of residual blocks, global average pool, fc.

    ``layers`` gives the number of blocks per stage (paper Table 1); stages 2-4 halve the
    resolution in their first block and double the width.
    """

    def __init__(
        self,
        block: Block,
        layers: list[int],
        num_classes: int = 1000,
        in_channels: int = 3,
        zero_init_residual: bool = False,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"layers must be 4 positive block counts, got {layers}")
        self._norm_layer = norm_layer
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.num_features = 512 * block.expansion
        self.fc = nn.Linear(self.num_features, num_classes)

        # torchvision's init: He (fan_out) for convs, unit scale and zero shift for norms; the fc
        # keeps PyTorch's default, as torchvision's does.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            # Goyal et al. 2017 ("ImageNet in 1 hour"): the last norm of each residual branch starts
            # at zero, so every block begins as identity + ReLU (torchvision credits it with +0.2-0.3% top-1).
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            # Projection shortcut (paper's option B) where the shape changes; identity elsewhere.
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                self._norm_layer(planes * block.expansion),
            )
        stage = [block(self.inplanes, planes, stride, downsample, norm_layer=self._norm_layer)]
        self.inplanes = planes * block.expansion
        stage += [block(self.inplanes, planes, norm_layer=self._norm_layer) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)


def _resnet(block: Block, layers: list[int], **kwargs: Any) -> ResNet:
    return ResNet(block, layers, **kwargs)


# What every ResNet says about itself; each builder adds its torchvision name.
_RESNET_INFO: dict[str, Any] = {
    "family": "resnet",
    "paper": RESNET_PAPER,
    "input_size": (3, 224, 224),
    # Every conv and the max pool are padded and the final pool is adaptive, so torch runs any size
    # down to 1x1; the total stride, 32, is the smallest input that gives layer4 one cell per 32x32
    # patch rather than a cell computed mostly from padding.
    "min_input_size": 32,
    "num_classes": 1000,
    "classifier": "fc",
}


@register_model(torchvision="resnet18", **_RESNET_INFO)
def resnet18(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-18 (He et al. 2015, arXiv:1512.03385): BasicBlock x [2, 2, 2, 2], 11.7M parameters."""
    return _resnet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(torchvision="resnet34", **_RESNET_INFO)
def resnet34(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-34 (He et al. 2015, arXiv:1512.03385): BasicBlock x [3, 4, 6, 3], 21.8M parameters."""
    return _resnet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(torchvision="resnet50", **_RESNET_INFO)
def resnet50(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-50 (He et al. 2015, arXiv:1512.03385): Bottleneck x [3, 4, 6, 3], 25.6M parameters."""
    return _resnet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(torchvision="resnet101", **_RESNET_INFO)
def resnet101(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-101 (He et al. 2015, arXiv:1512.03385): Bottleneck x [3, 4, 23, 3], 44.5M parameters."""
    return _resnet(Bottleneck, [3, 4, 23, 3], num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(torchvision="resnet152", **_RESNET_INFO)
def resnet152(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-152 (He et al. 2015, arXiv:1512.03385): Bottleneck x [3, 8, 36, 3], 60.2M parameters."""
    return _resnet(Bottleneck, [3, 8, 36, 3], num_classes=num_classes, in_channels=in_channels, **kwargs)
