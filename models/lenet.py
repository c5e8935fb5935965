"""LeNet-5 (LeCun et al., 1998), as the deeplearning.ai CNN course teaches it: 1x32x32 in, 61,706 parameters."""

from __future__ import annotations

from torch import Tensor, nn

from ._base import Classifier
from ._registry import Paper, register_model

__all__ = ["LeNet5", "lenet5"]

LENET_PAPER = Paper(
    title="Gradient-based learning applied to document recognition",
    authors="LeCun, Bottou, Bengio, Haffner",
    year=1998,
    url="https://doi.org/10.1109/5.726791",
)


class LeNet5(Classifier):
    """conv 6@5x5, pool, conv 16@5x5, pool, fc 120, fc 84, fc num_classes.

    Average pooling and tanh as in the paper; C3 is fully connected to S2 (the course's
    simplification of the paper's sparse connection table), which gives the 61,706 parameters.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, act_layer: type[nn.Module] = nn.Tanh) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5),
            act_layer(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5),
            act_layer(),
            nn.AvgPool2d(kernel_size=2, stride=2),
        )
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120),
            act_layer(),
            nn.Linear(120, 84),
            act_layer(),
            nn.Linear(84, num_classes),
        )

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.flatten(x)
        return self.classifier[:-1](x) if pre_logits else self.classifier(x)


@register_model(
    family="lenet",
    paper=LENET_PAPER,
    input_size=(1, 32, 32),
    min_input_size=32,
    fixed_input_size=True,
    num_classes=10,
    classifier="classifier.4",
    mean=(0.5,),
    std=(0.5,),
)
def lenet5(*, num_classes: int = 10, in_channels: int = 1, **kwargs) -> LeNet5:
    """LeNet-5: two 5x5 conv/pool stages and three fully connected layers (61,706 parameters)."""
    return LeNet5(num_classes=num_classes, in_channels=in_channels, **kwargs)
