"""GoogLeNet (Szegedy et al., 2014): the paper's network and torchvision's variant, from shared blocks.

``googlenet`` follows the paper (Table 1, Fig. 3): convs with biases and ReLU, local response
normalisation after the first pool and after conv3, 5x5 convs in the third inception branch, dropout
0.4. ``googlenet_torchvision`` has torchvision's layout, so that its weight files (ported from
TensorFlow) load unchanged and give the same outputs: batch norm after every conv instead of biases
and LRN, 3x3 convs in the "5x5" branch, a 2x2 pool before inception 5a, adaptively pooled auxiliary
classifiers and dropout 0.2. :class:`GoogLeNet`'s defaults are the paper; the torchvision builder
passes the departures.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ._base import Classifier, _tracing
from ._registry import IMAGENET_MEAN, IMAGENET_STD, Paper, check_input_size, register_model

__all__ = [
    "BasicConv2d",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "Inception",
    "InceptionAux",
    "googlenet",
    "googlenet_torchvision",
]

GOOGLENET_PAPER = Paper(
    title="Going Deeper with Convolutions",
    authors="Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke, Rabinovich",
    year=2014,
    url="https://arxiv.org/abs/1409.4842",
)

NormLayer = Callable[[int], nn.Module]
ConvBlock = Callable[..., nn.Module]

# Table 1 of the paper, one row per inception module (torchvision uses the same numbers):
#          in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
INCEPTIONS: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


class GoogLeNetOutputs(NamedTuple):
    """What a training-mode forward with auxiliary classifiers returns, in torchvision's field order."""

    logits: Tensor
    aux_logits2: Tensor | None
    aux_logits1: Tensor | None


class BasicConv2d(nn.Module):
    """conv -> norm -> ReLU; without a norm layer, the paper's conv (with bias) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, norm_layer: NormLayer | None = None, **kwargs: Any) -> None:
        super().__init__()
        # A norm's shift makes a conv bias redundant; torchvision's convs have none.
        self.conv = nn.Conv2d(in_channels, out_channels, bias=norm_layer is None, **kwargs)
        self.bn = nn.Identity() if norm_layer is None else norm_layer(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four branches concatenated on channels (paper Fig. 2b): 1x1; 1x1 -> 3x3; 1x1 -> 5x5; pool -> 1x1.

    ``branch3_kernel_size`` is the "5x5" of the third branch: 5 in the paper, 3 in torchvision, whose
    weights were trained with that slip (pytorch/vision#906).
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        conv_block: ConvBlock = BasicConv2d,
        branch3_kernel_size: int = 5,
    ) -> None:
        super().__init__()
        self.branch1 = conv_block(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            conv_block(in_channels, ch3x3red, kernel_size=1),
            conv_block(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            conv_block(in_channels, ch5x5red, kernel_size=1),
            conv_block(ch5x5red, ch5x5, kernel_size=branch3_kernel_size, padding=branch3_kernel_size // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            conv_block(in_channels, pool_proj, kernel_size=1),
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class PaperAuxPool(nn.Module):
    """The paper's 5x5/3 average pool, made to serve any input size for training.

    At 224x224 it is exactly the paper's pool (14x14 -> 4x4). Maps too small for a 5x5 window go
    straight to the adaptive pool, and the adaptive 4x4 pool after it gives fc1 the 4x4 it takes at
    any size, so the side classifiers train at the small resolutions used for digits too.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(kernel_size=5, stride=3)
        self.resize = nn.AdaptiveAvgPool2d(4)

    def forward(self, x: Tensor) -> Tensor:
        if min(x.shape[-2:]) >= 5:
            x = self.pool(x)
        return self.resize(x)


class InceptionAux(nn.Module):
    """Auxiliary side classifier (paper Sec. 5): pool to 4x4, 1x1 conv 128, fc 1024, dropout, fc.

    ``pool`` must bring the 14x14 map of a 224x224 input to 4x4: the paper's 5x5/3 average pool, or
    torchvision's adaptive 4x4 pool, which does so at any input size.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        pool: nn.Module,
        conv_block: ConvBlock = BasicConv2d,
        dropout: float = 0.7,
    ) -> None:
        super().__init__()
        self.pool = pool
        self.conv = conv_block(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GoogLeNet(Classifier):
    """The 22-layer GoogLeNet; the defaults build the paper's network.

    With ``aux_logits``, a training-mode forward returns :class:`GoogLeNetOutputs` (the logits and
    both auxiliary logits); an eval-mode forward always returns the logits tensor, so the
    auxiliary classifiers cost nothing at inference and :meth:`drop_aux` removes them for export.
    """

    # Sec. 5: "during training, their loss gets added to the total loss of the network with a discount
    # weight (the losses of the auxiliary classifiers were weighted by 0.3)".
    aux_weight = 0.3

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = False,
        transform_input: bool = False,
        dropout: float = 0.4,
        dropout_aux: float = 0.7,
        norm_layer: NormLayer | None = None,
        lrn: bool = True,
        branch3_kernel_size: int = 5,
        pool4_kernel_size: int = 3,
        aux_pool: Callable[[], nn.Module] = PaperAuxPool,
    ) -> None:
        super().__init__()
        if transform_input and in_channels != 3:
            raise ValueError(f"transform_input re-normalises RGB inputs; it needs in_channels=3, got {in_channels}")
        self.transform_input = transform_input
        conv_block = partial(BasicConv2d, norm_layer=norm_layer)

        def inception(name: str) -> Inception:
            return Inception(*INCEPTIONS[name], conv_block=conv_block, branch3_kernel_size=branch3_kernel_size)

        def local_response_norm() -> nn.Module:
            # Fig. 3's LocalRespNorm, with the BVLC reference model's size 5, alpha 1e-4, beta 0.75:
            # torch's defaults, and torch, like Caffe, divides alpha by the size.
            return nn.LocalResponseNorm(5) if lrn else nn.Identity()

        # ceil_mode: Caffe's rounding, which gives Table 1's 112 -> 56 -> 28 -> 14 -> 7 without padding.
        self.conv1 = conv_block(in_channels, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.lrn1 = local_response_norm()
        self.conv2 = conv_block(64, 64, kernel_size=1)
        self.conv3 = conv_block(64, 192, kernel_size=3, padding=1)
        self.lrn2 = local_response_norm()
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception3a = inception("3a")
        self.inception3b = inception("3b")
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception4a = inception("4a")
        self.inception4b = inception("4b")
        self.inception4c = inception("4c")
        self.inception4d = inception("4d")
        self.inception4e = inception("4e")
        self.maxpool4 = nn.MaxPool2d(pool4_kernel_size, stride=2, ceil_mode=True)

        self.inception5a = inception("5a")
        self.inception5b = inception("5b")

        # The side classifiers sit on 4a and 4d (Fig. 3); torchvision's names, aux1 and aux2.
        self.aux1: InceptionAux | None = None
        self.aux2: InceptionAux | None = None
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, aux_pool(), conv_block=conv_block, dropout=dropout_aux)
            self.aux2 = InceptionAux(528, num_classes, aux_pool(), conv_block=conv_block, dropout=dropout_aux)

        # Table 1's 7x7 average pool, made global so that other input sizes work.
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.num_features = 1024
        self.fc = nn.Linear(self.num_features, num_classes)
        self._init_weights(normalized=norm_layer is not None)

    def _init_weights(self, normalized: bool) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if normalized:
                    # torchvision's trunc_normal_(std=0.01, a=-2, b=2) cuts at 200 std, i.e. never:
                    # the same distribution, and plain normal_ builds the network a second faster.
                    nn.init.normal_(m.weight, mean=0.0, std=0.01)
                else:
                    # Without batch norm, 0.01 would shrink the signal layer after layer; the BVLC
                    # reference model's Caffe "xavier" (uniform, variance 1/fan_in) keeps it level, and
                    # its 0.2 conv biases keep the ReLUs alive.
                    nn.init.kaiming_uniform_(m.weight, nonlinearity="linear")
                    if m.bias is not None:
                        nn.init.constant_(m.bias, 0.2 if isinstance(m, nn.Conv2d) else 0.0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def aux_logits(self) -> bool:
        return self.aux1 is not None

    def drop_aux(self) -> None:
        """Remove the auxiliary classifiers (training-only; torchvision does this after loading weights)."""
        self.aux1 = None
        self.aux2 = None

    def reset_classifier(self, num_classes: int) -> None:
        super().reset_classifier(num_classes)
        # The side classifiers predict the same classes as the main one.
        for aux in (self.aux1, self.aux2):
            if aux is not None:
                old = aux.fc2
                new = nn.Linear(old.in_features, num_classes)
                aux.fc2 = new.to(device=old.weight.device, dtype=old.weight.dtype)

    def _transform_input(self, x: Tensor) -> Tensor:
        # torchvision's pretrained weights (ported from TensorFlow) expect inputs scaled to [-1, 1]; this
        # maps ImageNet-normalised inputs there: (x * std + mean - 0.5) / 0.5, channel by channel.
        # The constants are worked out in double precision, as torchvision's are, for identical outputs.
        scale = torch.tensor([s / 0.5 for s in IMAGENET_STD], dtype=x.dtype, device=x.device)
        shift = torch.tensor([(m - 0.5) / 0.5 for m in IMAGENET_MEAN], dtype=x.dtype, device=x.device)
        return x * scale.view(1, 3, 1, 1) + shift.view(1, 3, 1, 1)

    def _features(self, x: Tensor, with_aux: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """The backbone, and the auxiliary logits where asked (and built)."""
        if self.transform_input:
            x = self._transform_input(x)
        x = self.lrn1(self.maxpool1(self.conv1(x)))
        x = self.maxpool2(self.lrn2(self.conv3(self.conv2(x))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if with_aux and self.aux1 is not None else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if with_aux and self.aux2 is not None else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        return x, aux1, aux2

    def forward_features(self, x: Tensor) -> Tensor:
        return self._features(x, with_aux=False)[0]

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.dropout(torch.flatten(self.avgpool(x), 1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: Tensor) -> Tensor | GoogLeNetOutputs:  # type: ignore[override]
        info = self.__dict__.get("info")
        if info is not None and not _tracing():
            check_input_size(info, x.shape)
        with_aux = self.training and self.aux_logits
        x, aux1, aux2 = self._features(x, with_aux)
        logits = self.forward_head(x)
        return GoogLeNetOutputs(logits, aux2, aux1) if with_aux else logits


# Where torchvision's GoogLeNet departs from the paper's, i.e. from GoogLeNet's defaults.
_TORCHVISION: dict[str, Any] = {
    # TensorFlow's batch-norm epsilon, kept for the ported weights.
    "norm_layer": partial(nn.BatchNorm2d, eps=0.001),
    "lrn": False,
    "branch3_kernel_size": 3,  # pytorch/vision#906
    "pool4_kernel_size": 2,
    "aux_pool": partial(nn.AdaptiveAvgPool2d, 4),
    "dropout": 0.2,
}


@register_model(
    family="googlenet",
    paper=GOOGLENET_PAPER,
    input_size=(3, 224, 224),
    # Exact (checked on the meta device): the unpadded 3x3/2 pool before inception 5a needs at least
    # a 2x2 map, which takes a 31x31 input (224 gives it 14x14); at 30 torch's ceil-mode pool gets an
    # empty output. The auxiliary classifiers' pools take any size (PaperAuxPool).
    min_input_size=31,
    num_classes=1000,
    classifier="fc",
)
def googlenet(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> GoogLeNet:
    """GoogLeNet as in the paper (Szegedy et al. 2014, arXiv:1409.4842): 5x5 branches, LRN, no batch norm."""
    return GoogLeNet(num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(
    family="googlenet",
    paper=GOOGLENET_PAPER,
    input_size=(3, 224, 224),
    # Exact (checked on the meta device): the unpadded 3x3/2 pool before inception 4a needs at least
    # a 2x2 map, which takes a 15x15 input; at 14 torch's ceil-mode pool gets an empty output. The
    # 2x2/2 pool before 5a and the adaptive pools take a 1x1 map.
    min_input_size=15,
    num_classes=1000,
    classifier="fc",
    torchvision="googlenet",
)
def googlenet_torchvision(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> GoogLeNet:
    """GoogLeNet in torchvision's layout (Szegedy et al. 2014, arXiv:1409.4842): BN, 3x3 "5x5" branches."""
    return GoogLeNet(num_classes=num_classes, in_channels=in_channels, **{**_TORCHVISION, **kwargs})
