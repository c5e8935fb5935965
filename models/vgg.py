"""VGG (Simonyan & Zisserman, 2014) in torchvision's layout: VGG-11/13/16/19, with and without BN.

The state_dict names and shapes are torchvision's (``features.N``, ``classifier.0/3/6``), so its
ImageNet weights load as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from torch import Tensor, nn

from ._base import Classifier
from ._registry import Paper, register_model

__all__ = [
    "VGG",
    "VGG_CFGS",
    "make_features",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
]

VGG_PAPER = Paper(
    title="Very deep convolutional networks for large-scale image recognition",
    authors="Simonyan, Zisserman",
    year=2014,
    url="https://arxiv.org/abs/1409.1556",
)

# Table 1 of the paper, configurations A, B, D and E by depth: the width of each 3x3/1 convolution
# (padded by 1), "M" a 2x2/2 max pool.
VGG_CFGS: dict[int, tuple[int | Literal["M"], ...]] = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ),
}


def make_features(
    cfg: Sequence[int | str],
    in_channels: int = 3,
    norm_layer: Callable[[int], nn.Module] | None = None,
) -> nn.Sequential:
    """conv3-ReLU (conv3-norm-ReLU with a ``norm_layer``) for each width, a max pool for each "M".

    One flat ``nn.Sequential``, so the module indices are torchvision's. The convolutions keep
    their bias even before batch norm, as torchvision's do.
    """
    layers: list[nn.Module] = []
    width = in_channels
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        elif isinstance(v, int) and v > 0:
            layers.append(nn.Conv2d(width, v, kernel_size=3, padding=1))
            if norm_layer is not None:
                layers.append(norm_layer(v))
            layers.append(nn.ReLU(inplace=True))
            width = v
        else:
            raise ValueError(f"bad entry in VGG configuration: {v!r} (want a positive width or 'M')")
    return nn.Sequential(*layers)


class VGG(Classifier):
    """A VGG body from a configuration, a 7x7 average pool and the 4096-4096-classes head."""

    def __init__(
        self,
        cfg: Sequence[int | str],
        num_classes: int = 1000,
        in_channels: int = 3,
        norm_layer: Callable[[int], nn.Module] | None = None,
        dropout: float = 0.5,
        init_weights: bool = True,
    ) -> None:
        super().__init__()
        self.features = make_features(cfg, in_channels, norm_layer)
        width = [v for v in cfg if v != "M"][-1]
        # An identity at 224 (five pools give 7x7); torchvision added it so other sizes reach the
        # 7x7x512 the first fully connected layer was trained on.
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(
            nn.Linear(int(width) * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's initialisation, which lets even VGG-19 train from scratch without the
        # paper's staged training (section 3.1 initialised deeper nets from configuration A).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.flatten(self.avgpool(x))
        return self.classifier[:-1](x) if pre_logits else self.classifier(x)


def _vgg(depth: int, batch_norm: bool, num_classes: int, in_channels: int, **kwargs) -> VGG:
    norm = nn.BatchNorm2d if batch_norm else None
    return VGG(VGG_CFGS[depth], num_classes=num_classes, in_channels=in_channels, norm_layer=norm, **kwargs)


def _register(torchvision: str | None) -> Callable:
    return register_model(
        family="vgg",
        paper=VGG_PAPER,
        input_size=(3, 224, 224),
        # All convolutions are padded, so only the five 2x2/2 pools limit the size: each needs at
        # least 2x2, which takes a side of 2**5 = 32 (the total stride); at 31 max_pool2d fails.
        min_input_size=32,
        classifier="classifier.6",
        torchvision=torchvision,
    )


@_register(torchvision="vgg11")
def vgg11(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-11, configuration A of Simonyan & Zisserman (2014) (132,863,336 parameters)."""
    return _vgg(11, False, num_classes, in_channels, **kwargs)


@_register(torchvision="vgg13")
def vgg13(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-13, configuration B of Simonyan & Zisserman (2014) (133,047,848 parameters)."""
    return _vgg(13, False, num_classes, in_channels, **kwargs)


@_register(torchvision="vgg16")
def vgg16(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-16, configuration D of Simonyan & Zisserman (2014) (138,357,544 parameters)."""
    return _vgg(16, False, num_classes, in_channels, **kwargs)


@_register(torchvision="vgg19")
def vgg19(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-19, configuration E of Simonyan & Zisserman (2014) (143,667,240 parameters)."""
    return _vgg(19, False, num_classes, in_channels, **kwargs)


@_register(torchvision="vgg11_bn")
def vgg11_bn(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-11 with batch norm after each convolution: torchvision's variant of Simonyan & Zisserman (2014)."""
    return _vgg(11, True, num_classes, in_channels, **kwargs)


# Same layout as torchvision's vgg13_bn, but tests/data/torchvision_layouts.json has no entry for it.
@_register(torchvision=None)
def vgg13_bn(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-13 with batch norm after each convolution: torchvision's variant of Simonyan & Zisserman (2014)."""
    return _vgg(13, True, num_classes, in_channels, **kwargs)


@_register(torchvision="vgg16_bn")
def vgg16_bn(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-16 with batch norm after each convolution: torchvision's variant of Simonyan & Zisserman (2014)."""
    return _vgg(16, True, num_classes, in_channels, **kwargs)


@_register(torchvision="vgg19_bn")
def vgg19_bn(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-19 with batch norm after each convolution: torchvision's variant of Simonyan & Zisserman (2014)."""
    return _vgg(19, True, num_classes, in_channels, **kwargs)
