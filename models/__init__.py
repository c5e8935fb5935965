"""The model zoo: plain-PyTorch classic CNNs with per-layer summaries.

>>> import models
>>> model = models.create_model("resnet18", num_classes=10)
>>> models.summarize(model, (3, 224, 224)).total_params
11181642
"""

# Each family file registers its builders when imported.
from . import alexnet, efficientnet, examples, googlenet, lenet, mobilenet_v1, mobilenet_v2, nin, resnet, vgg  # noqa: F401
from ._base import Classifier
from ._registry import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    InputSizeError,
    ModelInfo,
    Paper,
    UnknownModelError,
    check_input_size,
    create_model,
    get_model_info,
    list_models,
    register_model,
)
from .summary import canonical_summary, conv_macs, summarize

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Classifier",
    "InputSizeError",
    "ModelInfo",
    "Paper",
    "UnknownModelError",
    "canonical_summary",
    "check_input_size",
    "conv_macs",
    "create_model",
    "get_model_info",
    "list_models",
    "register_model",
    "summarize",
]
