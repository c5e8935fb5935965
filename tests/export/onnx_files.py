"""ONNX files made outside the build, as a user brings them: small torch modules of the tests' own, exported by
torch's two exporters, and broken or unsuitable files written with the ``onnx`` package."""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from onnx import TensorProto, helper
from torch import nn


class Fire(nn.Module):
    """SqueezeNet's fire module (squeeze 1x1, expand 1x1 and 3x3, concatenated): not in the zoo."""

    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3 = nn.Conv2d(squeeze, expand, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.squeeze(x))
        return torch.cat([self.relu(self.expand1(x)), self.relu(self.expand3(x))], 1)


class TinySqueeze(nn.Module):
    """A small SqueezeNet-style classifier with a BatchNorm after its stem; ``softmax``: probabilities out."""

    def __init__(self, classes: int = 10, softmax: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, bias=False), nn.BatchNorm2d(16), nn.ReLU(), Fire(16, 8, 16), nn.MaxPool2d(2)
        )
        self.classifier = nn.Sequential(nn.Conv2d(32, classes, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.softmax = softmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.classifier(self.features(x))
        return torch.softmax(scores, 1) if self.softmax else scores


def tiny_squeeze(softmax: bool = False, classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    model = TinySqueeze(classes, softmax)
    model.train()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        model(torch.randn(8, 3, 48, 48))
    return model.eval()


def export_torchscript(model: nn.Module, path: Path, size: int = 48, dynamic: bool = True) -> Path:
    """torch's TorchScript exporter, input ``image`` and output ``scores``, a dynamic batch unless told not."""
    axes = {"image": {0: "N"}, "scores": {0: "N"}} if dynamic else None
    with warnings.catch_warnings():  # the exporter's own deprecation notice: a user's older code calls it so
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (torch.zeros(2 if dynamic else 1, 3, size, size),),
            str(path),
            input_names=["image"],
            output_names=["scores"],
            dynamic_axes=axes,
            dynamo=False,
            opset_version=17,
        )
    return path


def graph_file(path: Path, inputs: list[onnx.ValueInfoProto], nodes: list[onnx.NodeProto], output: str) -> Path:
    """A hand-made graph whose one output ``output`` is (N, 10) float."""
    graph = helper.make_graph(
        nodes, "handmade", inputs, [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", 10])]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    onnx.save(model, str(path))
    return path


def image_input(name: str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 3, 8, 8])
