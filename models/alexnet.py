"""AlexNet (Krizhevsky et al., 2012), torchvision's variant of it, and ZFNet (Zeiler & Fergus, 2013).

All three are the same network drawn from a layer table: five convolutions with three overlapping
3x3/2 max pools, then dropout and three fully connected layers on a 6x6 map.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

from torch import Tensor, nn

from ._base import Classifier
from ._registry import Paper, register_model

__all__ = ["AlexNet", "Conv", "alexnet", "alexnet_torchvision", "zfnet"]

ALEXNET_PAPER = Paper(
    title="ImageNet classification with deep convolutional neural networks",
    authors="Krizhevsky, Sutskever, Hinton",
    year=2012,
    url="https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks",
)
ONE_WEIRD_TRICK_PAPER = Paper(
    title="One weird trick for parallelizing convolutional neural networks",
    authors="Krizhevsky",
    year=2014,
    url="https://arxiv.org/abs/1404.5997",
)
ZFNET_PAPER = Paper(
    title="Visualizing and understanding convolutional networks",
    authors="Zeiler, Fergus",
    year=2013,
    url="https://arxiv.org/abs/1311.2901",
)


class Conv(NamedTuple):
    """A convolution followed by a ReLU."""

    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0


# A layer table holds Conv entries and two markers: "N" a local response normalisation,
# "M" an overlapping 3x3/2 max pool.
Layer = Conv | Literal["N", "M"]

# The paper's network as one tower (the two GPU halves joined), 3x227x227 in. Section 3.5:
# "Response-normalization layers follow the first and second convolutional layers. Max-pooling
# layers follow both response-normalization layers, as well as the fifth convolutional layer."
ALEXNET: tuple[Layer, ...] = (
    Conv(96, 11, stride=4),
    "N",
    "M",
    Conv(256, 5, padding=2),
    "N",
    "M",
    Conv(384, 3, padding=1),
    Conv(384, 3, padding=1),
    Conv(256, 3, padding=1),
    "M",
)

# torchvision's AlexNet follows the "one weird trick" paper: 64/192/384/256/256 filters, conv1 padded
# by 2 (so 224 inputs work), no normalisation layer.
ALEXNET_TORCHVISION: tuple[Layer, ...] = (
    Conv(64, 11, stride=4, padding=2),
    "M",
    Conv(192, 5, padding=2),
    "M",
    Conv(384, 3, padding=1),
    Conv(256, 3, padding=1),
    Conv(256, 3, padding=1),
    "M",
)

# ZFNet, Fig. 3 of the paper: conv1 7x7/2 and conv2 5x5/2, normalisation after the pools, with the
# larger conv3-5 of Table 2 ("512, 1024, 512 maps", the course's ZFNet). The paper gives no padding;
# padding conv1 by 1 and pooling in ceil mode (as the Caffe-era implementations did) reproduces its
# sizes at 224: 110, 55, 26, 13, 13, 13, 6.
ZFNET: tuple[Layer, ...] = (
    Conv(96, 7, stride=2, padding=1),
    "M",
    "N",
    Conv(256, 5, stride=2),
    "M",
    "N",
    Conv(512, 3, padding=1),
    Conv(1024, 3, padding=1),
    Conv(512, 3, padding=1),
    "M",
)


def make_features(layers: Sequence[Layer], in_channels: int, ceil_mode: bool = False) -> tuple[nn.Sequential, int]:
    """Build the convolutional part from a layer table; returns it and its output width."""
    modules: list[nn.Module] = []
    width = in_channels
    for layer in layers:
        if isinstance(layer, Conv):
            if min(layer.out_channels, layer.kernel_size, layer.stride) < 1 or layer.padding < 0:
                raise ValueError(f"bad convolution in AlexNet layer table: {layer}")
            modules += [nn.Conv2d(width, **layer._asdict()), nn.ReLU(inplace=True)]
            width = layer.out_channels
        elif layer == "N":
            # Section 3.3: n=5, k=2, alpha=1e-4, beta=0.75. torch divides alpha by n (as Caffe does),
            # so to the letter the paper's formula would take alpha=5e-4; the printed constants are
            # kept, as the usual ports keep them. No parameters either way.
            modules.append(nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))
        elif layer == "M":
            # Overlapping pooling (section 3.4): 3x3 windows, stride 2.
            modules.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=ceil_mode))
        else:
            raise ValueError(f"bad entry in AlexNet layer table: {layer!r} (want Conv, 'N' or 'M')")
    return nn.Sequential(*modules), width


class AlexNet(Classifier):
    """Convolutions from a layer table, a 6x6 average pool, then dropout/fc 4096/fc 4096/fc classes.

    The head is torchvision's (dropout before fc6 and fc7) for all three networks, so that
    ``classifier.6`` is the last layer of each.
    """

    def __init__(
        self,
        layers: Sequence[Layer] = ALEXNET,
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.5,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.features, width = make_features(layers, in_channels, ceil_mode)
        # An identity at the canonical size, where the last pool already gives 6x6; below it the
        # network still runs (and can be trained) on smaller inputs, as in torchvision.
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(width * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.flatten(self.avgpool(x))
        return self.classifier[:-1](x) if pre_logits else self.classifier(x)


@register_model(
    family="alexnet",
    paper=ALEXNET_PAPER,
    input_size=(3, 227, 227),
    # The third 3x3/2 pool needs a 3x3 map, so the second needs 7x7, the first 15x15, and conv1
    # (11x11/4, unpadded) 67x67; at 66 max_pool2d fails.
    min_input_size=67,
    classifier="classifier.6",
)
def alexnet(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> AlexNet:
    """AlexNet as in the paper, one tower: 96-256-384-384-256 filters, LRN (62,378,344 parameters)."""
    return AlexNet(ALEXNET, num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(
    family="alexnet",
    paper=ONE_WEIRD_TRICK_PAPER,
    input_size=(3, 224, 224),
    # As for alexnet, conv1 must give 15x15; padded by 2 it does from 63x63 on; at 62 max_pool2d fails.
    min_input_size=63,
    classifier="classifier.6",
    torchvision="alexnet",
)
def alexnet_torchvision(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> AlexNet:
    """torchvision's AlexNet, after Krizhevsky's "one weird trick" paper (61,100,840 parameters)."""
    return AlexNet(ALEXNET_TORCHVISION, num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(
    family="alexnet",
    paper=ZFNET_PAPER,
    input_size=(3, 224, 224),
    # The last pool (ceil mode) needs a 2x2 map, the second 4x4, conv2 (5x5/2) 11x11, the first pool
    # 22x22 and conv1 (7x7/2, padded by 1) 47x47; at 46 max_pool2d fails.
    min_input_size=47,
    classifier="classifier.6",
)
def zfnet(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> AlexNet:
    """ZFNet: AlexNet with conv1 7x7/2, conv2 5x5/2 and 512-1024-512 filters in conv3-5."""
    return AlexNet(ZFNET, num_classes=num_classes, in_channels=in_channels, ceil_mode=True, **kwargs)
