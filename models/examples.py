"""The course material's worked examples, whose shapes and parameter counts the lectures work out by hand.

Andrew Ng's Convolutional Neural Networks course (deeplearning.ai): the 39x39 convnet of week 1 and
the 28x28x192 inception module of week 2. The transfer-learning lecture of Ibtissam Abnane's Deep
Learning course: three Keras ``model.summary()`` exercises. Only the convnet classifies; the others
have no classification layer, but share the zoo's surface (``forward`` rejects an input too small
with the size it needs) with an identity head.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._base import Classifier
from ._registry import Paper, register_model

__all__ = [
    "ConvStack",
    "CourseConvNet",
    "InceptionModule",
    "course_convnet",
    "inception_module",
    "keras_example_1",
    "keras_example_2",
    "keras_example_3",
]

COURSE_CNN = Paper(
    title="Convolutional Neural Networks (deeplearning.ai), week 1: a simple convolutional network example",
    authors="Ng",
    year=2017,
    url="https://www.coursera.org/learn/convolutional-neural-networks",
)
GOOGLENET_PAPER = Paper(
    title="Going deeper with convolutions",
    authors="Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke, Rabinovich",
    year=2014,
    url="https://arxiv.org/abs/1409.4842",
)
COURSE_TRANSFER = Paper(
    title="Deep Learning (course slides), lecture on transfer learning",
    authors="Abnane",
    year=2023,
    url="",
)
GREY_MEAN, GREY_STD = (0.5,), (0.5,)


def _no_classes(name: str, num_classes: int) -> None:
    if num_classes:
        raise ValueError(f"{name} has no classification layer, so no num_classes (got {num_classes})")


def conv_relu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """A "same" convolution (stride 1, padded by k//2) and its ReLU."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
    return nn.Sequential(conv, nn.ReLU(inplace=True))


class InceptionModule(Classifier):
    """Four parallel branches, concatenated along the channels.

    1x1 | 1x1 reduce -> 3x3 | 1x1 reduce -> 5x5 | 3x3/1 max pool -> 1x1 projection. Every
    branch keeps the spatial size, which is what lets their outputs be stacked.
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3_reduce: int,
        ch3x3: int,
        ch5x5_reduce: int,
        ch5x5: int,
        pool_proj: int,
    ) -> None:
        super().__init__()
        self.branch1 = conv_relu(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(
            conv_relu(in_channels, ch3x3_reduce, 1),
            conv_relu(ch3x3_reduce, ch3x3, 3),
        )
        self.branch3 = nn.Sequential(
            conv_relu(in_channels, ch5x5_reduce, 1),
            conv_relu(ch5x5_reduce, ch5x5, 5),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            conv_relu(in_channels, pool_proj, 1),
        )

    def forward_features(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return x


class CourseConvNet(Classifier):
    """conv 10@3x3/1, conv 20@5x5/2, conv 40@5x5/2 (unpadded), flatten 7x7x40 = 1960, one fc layer.

    The course leaves the activation and the output unit open ("logistic regression or softmax");
    ReLU and a ``num_classes``-way linear layer.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, act_layer: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 10, kernel_size=3, stride=1),
            act_layer(),
            nn.Conv2d(10, 20, kernel_size=5, stride=2),
            act_layer(),
            nn.Conv2d(20, 40, kernel_size=5, stride=2),
            act_layer(),
        )
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(40 * 7 * 7, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.flatten(x)
        return x if pre_logits else self.fc(x)


class ConvStack(Classifier):
    """Unpadded 3x3 convolutions, each followed by an activation: Keras' ``Convolution2D(n, 3)``."""

    def __init__(self, in_channels: int, widths: Sequence[int], act_layer: type[nn.Module] = nn.Sigmoid) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for i, width in enumerate(widths, start=1):
            layers[f"conv{i}"] = nn.Conv2d(in_channels, width, kernel_size=3)
            layers[f"act{i}"] = act_layer()
            in_channels = width
        self.features = nn.Sequential(layers)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return x


@register_model(
    family="examples",
    paper=GOOGLENET_PAPER,
    input_size=(192, 28, 28),
    # Every branch is stride 1 and padded to keep the size, so any side from 1 on works.
    min_input_size=1,
    num_classes=0,
    classifier=None,
    # The input is a feature map inside a network, not an image: nothing to normalise.
    mean=(0.0,) * 192,
    std=(1.0,) * 192,
)
def inception_module(*, num_classes: int = 0, in_channels: int = 192, **kwargs) -> InceptionModule:
    """The course's inception module, GoogLeNet's inception (3a): 192x28x28 -> (64+128+32+32)x28x28."""
    _no_classes("inception_module", num_classes)
    return InceptionModule(in_channels, 64, 96, 128, 16, 32, 32, **kwargs)


@register_model(
    family="examples",
    paper=COURSE_CNN,
    input_size=(3, 39, 39),
    # The fc layer takes exactly 40x7x7 = 1960 features; 38 gives 6x6 and fails.
    min_input_size=39,
    fixed_input_size=True,
    num_classes=10,
    classifier="fc",
    # Its name until 0.1: "seed" meant the course notes the zoo was built from.
    deprecated_names=("seed_convnet",),
)
def course_convnet(*, num_classes: int = 10, in_channels: int = 3, **kwargs) -> CourseConvNet:
    """The course's example convnet: 39x39x3 -> 37x37x10 -> 17x17x20 -> 7x7x40 -> 1960 -> classes."""
    return CourseConvNet(num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(
    family="examples",
    paper=COURSE_TRANSFER,
    input_size=(1, 10, 10),
    # One unpadded 3x3 convolution needs a 3x3 input.
    min_input_size=3,
    num_classes=0,
    classifier=None,
    mean=GREY_MEAN,
    std=GREY_STD,
)
def keras_example_1(*, num_classes: int = 0, in_channels: int = 1, **kwargs) -> ConvStack:
    """The transfer-learning lecture's first model.summary(): Conv2D(1, 3), a sigmoid (10 parameters).

    1x10x10 -> 1x8x8.
    """
    _no_classes("keras_example_1", num_classes)
    return ConvStack(in_channels, (1,), **kwargs)


@register_model(
    family="examples",
    paper=COURSE_TRANSFER,
    input_size=(1, 10, 10),
    # Two unpadded 3x3 convolutions need a 5x5 input.
    min_input_size=5,
    num_classes=0,
    classifier=None,
    mean=GREY_MEAN,
    std=GREY_STD,
)
def keras_example_2(*, num_classes: int = 0, in_channels: int = 1, **kwargs) -> ConvStack:
    """The transfer-learning lecture's second model.summary(): Conv2D(5, 3), Conv2D(2, 3), sigmoids (142 parameters).

    1x10x10 -> 5x8x8 (50 parameters) -> 2x6x6 (92).
    """
    _no_classes("keras_example_2", num_classes)
    return ConvStack(in_channels, (5, 2), **kwargs)


@register_model(
    family="examples",
    paper=COURSE_TRANSFER,
    input_size=(3, 100, 100),
    # Two unpadded 3x3 convolutions need a 5x5 input.
    min_input_size=5,
    num_classes=0,
    classifier=None,
)
def keras_example_3(*, num_classes: int = 0, in_channels: int = 3, **kwargs) -> ConvStack:
    """The transfer-learning lecture's third model.summary(): Conv2D(8, 3), Conv2D(1, 3), sigmoids (297 parameters).

    3x100x100 -> 8x98x98 (224 parameters) -> 1x96x96 (73).
    """
    _no_classes("keras_example_3", num_classes)
    return ConvStack(in_channels, (8, 1), **kwargs)
