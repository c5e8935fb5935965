"""Network in Network (Lin, Chen & Yan, 2013): mlpconv blocks and global average pooling, no fc layer.

An mlpconv block is a kxk convolution followed by two 1x1 convolutions (the paper's "cascaded
cross channel parametric pooling", ``cccp``), each with a ReLU. The last 1x1 convolution gives one
map per class and a global average pool turns the maps into the logits (section 3.2).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal, NamedTuple

from torch import Tensor, nn

from ._base import Classifier
from ._registry import Paper, register_model

__all__ = ["NIN", "MlpConv", "Stage", "nin", "nin_cifar"]

NIN_PAPER = Paper(
    title="Network in network",
    authors="Lin, Chen, Yan",
    year=2013,
    url="https://arxiv.org/abs/1312.4400",
)


class Stage(NamedTuple):
    """One mlpconv block and what follows it.

    ``widths`` are the outputs of its three convolutions; the last stage lists only two, its
    final 1x1 convolution being the classifier, one map per class.
    """

    kernel_size: int
    stride: int
    padding: int
    widths: tuple[int, ...]
    pool: Literal["max", "avg"] | None
    dropout: bool


# The first author's reference Caffe models (the model zoo's NIN gists by mavenlin). Their 3x3/2
# pools round up (Caffe's ceil mode); the CIFAR one drops out after every block but the last
# (section 4.1), the ImageNet one only before the last.
#     kernel, stride, padding, widths, pool after, dropout after the pool
NIN_CIFAR: tuple[Stage, ...] = (
    Stage(5, 1, 2, (192, 160, 96), "max", True),
    Stage(5, 1, 2, (192, 192, 192), "avg", True),
    Stage(3, 1, 1, (192, 192), None, False),
)
NIN_IMAGENET: tuple[Stage, ...] = (
    Stage(11, 4, 0, (96, 96, 96), "max", False),
    Stage(5, 1, 2, (256, 256, 256), "max", False),
    Stage(3, 1, 1, (384, 384, 384), "max", True),
    Stage(3, 1, 1, (1024, 1024), None, False),
)


class MlpConv(nn.Sequential):
    """kxk conv, 1x1 conv, 1x1 conv, a ReLU after each (``last_relu=False``: not after the third); Caffe's names."""

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int],
        kernel_size: int,
        stride: int,
        padding: int,
        last_relu: bool = True,
    ) -> None:
        conv_width, cccp1_width, cccp2_width = widths
        layers = OrderedDict(
            conv=nn.Conv2d(in_channels, conv_width, kernel_size, stride, padding),
            relu=nn.ReLU(inplace=True),
            cccp1=nn.Conv2d(conv_width, cccp1_width, 1),
            relu1=nn.ReLU(inplace=True),
            cccp2=nn.Conv2d(cccp1_width, cccp2_width, 1),
        )
        if last_relu:
            layers["relu2"] = nn.ReLU(inplace=True)
        super().__init__(layers)


class NIN(Classifier):
    """mlpconv stages from a table; ``forward_features`` gives the class maps, ``forward_head`` averages them.

    The ReLU after the class maps is the reference models' (``relu_cccp6``/``relu12``). As in
    the paper there is nothing between the pooled maps and the softmax, so ``pre_logits`` gives
    the same vector as the logits. ``class_map_relu=False`` drops that ReLU: logits that cannot go
    below zero let training silence a whole class for good (a class map at zero for every image
    gets no gradient), which on the digits stalled adaptive-rate training at 48-86% test top-1.
    """

    def __init__(
        self,
        stages: Sequence[Stage] = NIN_CIFAR,
        num_classes: int = 10,
        in_channels: int = 3,
        dropout: float = 0.5,
        class_map_relu: bool = True,
    ) -> None:
        super().__init__()
        if not stages:
            raise ValueError("NIN needs at least one stage")
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        width = in_channels
        for i, stage in enumerate(stages, start=1):
            last = i == len(stages)
            if len(stage.widths) != (2 if last else 3) or min(stage.widths) < 1:
                want = "two widths (the third is the class count)" if last else "three widths"
                raise ValueError(f"bad widths in NIN stage {i}: {stage.widths} (want {want})")
            widths = (*stage.widths, num_classes) if last else stage.widths
            layers[f"block{i}"] = MlpConv(
                width, widths, stage.kernel_size, stage.stride, stage.padding, last_relu=class_map_relu or not last
            )
            if stage.pool == "max":
                layers[f"pool{i}"] = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
            elif stage.pool == "avg":
                layers[f"pool{i}"] = nn.AvgPool2d(kernel_size=3, stride=2, ceil_mode=True)
            elif stage.pool is not None:
                raise ValueError(f"bad pool in NIN stage {i}: {stage.pool!r} (want 'max', 'avg' or None)")
            if stage.dropout:
                layers[f"drop{i}"] = nn.Dropout(p=dropout)
            width = widths[-1]
        self.features = nn.Sequential(layers)
        # Replaces the reference models' fixed 8x8 (CIFAR) and 6x6 (ImageNet) average pools, which
        # are global at the canonical size, so other sizes work too.
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return self.flatten(self.global_pool(x))


@register_model(
    family="nin",
    paper=NIN_PAPER,
    input_size=(3, 32, 32),
    # The convolutions are padded; the two 3x3/2 pools (ceil mode) need a 2x2 map each, which a
    # side of 4 (the total stride) gives; at 3 the second pool fails.
    min_input_size=4,
    num_classes=10,
    classifier="features.block3.cccp2",
)
def nin_cifar(*, num_classes: int = 10, in_channels: int = 3, **kwargs) -> NIN:
    """NIN for CIFAR-10: mlpconv blocks 192-160-96, 192-192-192, 192-192-classes (966,986 parameters)."""
    return NIN(NIN_CIFAR, num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(
    family="nin",
    paper=NIN_PAPER,
    input_size=(3, 224, 224),
    # The third pool needs a 2x2 map, the second 4x4, the first 8x8, which the unpadded 11x11/4
    # conv1 gives from 39x39 on; at 38 max_pool2d fails.
    min_input_size=39,
    classifier="features.block4.cccp2",
)
def nin(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> NIN:
    """NIN for ImageNet, the Caffe model zoo's: mlpconv blocks 96, 256, 384, 1024 wide (7,595,176 params)."""
    return NIN(NIN_IMAGENET, num_classes=num_classes, in_channels=in_channels, **kwargs)
