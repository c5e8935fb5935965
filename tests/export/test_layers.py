"""The layer record: every layer's ONNX tensor, checked against PyTorch's forward hooks.

The quick repository's cards are checked again here by other means (``onnx`` adds the recorded
tensors as outputs, ONNX Runtime runs a real digit, hooks on the checkpoint's network give the
reference); every network of the default set is exported with random weights (batch norm
statistics included, so that a convolution mistaken for its batch norm shows) at its served
size and recorded (AlexNet's and VGG's 100M-weight heads replaced by a small one, as
``test_onnx_export`` does: the layers before them are the same, and the export writes megabytes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

import models
from export.layers import block_names, record_layer_outputs
from export.onnx_export import ExportError, export_onnx, read_metadata, serving_copy
from repository import LayerOutputs, Repository
from training.recipes import DEFAULT_SET, RECIPES

QUICK = ("lenet5", "resnet18")


def _outputs(net: nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Every module call's output, cloned when it returns (an in-place ReLU changes it later), named as recorded."""
    out: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    handles = []
    for name, module in net.named_modules():
        if name:

            def hook(mod: nn.Module, args: tuple, y: object, name: str = name) -> None:
                if isinstance(y, torch.Tensor):
                    counts[name] = counts.get(name, 0) + 1
                    out[name if counts[name] == 1 else f"{name}#{counts[name]}"] = y.detach().clone().numpy()

            handles.append(module.register_forward_hook(hook))
    with torch.no_grad():
        net(x)
    for handle in handles:
        handle.remove()
    return out


def _onnx_values(path: Path, tensors: list[str], x: np.ndarray) -> dict[str, np.ndarray]:
    proto = onnx.load(path)
    proto.graph.output.extend(onnx.ValueInfoProto(name=t) for t in tensors)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip(tensors, session.run(tensors, {"input": x}), strict=True))


def _check_covers_the_network(record: LayerOutputs, net: nn.Module, reference: dict[str, np.ndarray]) -> None:
    """Every convolution and every block with a feature map has a tensor; convolutions before a batch norm hold it."""
    names = {layer.name: layer for layer in record.layers}
    modules = dict(net.named_modules())
    for name, module in modules.items():
        if isinstance(module, nn.Conv2d):
            assert name in names and names[name].weight == f"network.{name}.weight", name
    for name in block_names(net):
        if name in reference and reference[name].ndim == 4 and name not in record.left_out:
            assert name in names, f"block {name} has no tensor"
    for layer in record.layers:
        assert layer.max_abs_diff <= layer.tolerance, layer
        if layer.holds is not None:
            assert layer.type == "Conv2d" and isinstance(modules[layer.holds], nn.BatchNorm2d)
            assert names[layer.holds].tensor == layer.tensor


@pytest.mark.parametrize("name", QUICK)
def test_the_quick_repository_records_its_layers(quick_repository: Path, name: str) -> None:
    from training.weights import load_checkpoint

    card = Repository(quick_repository).load_card(name)
    version = card.versions[card.latest_version]
    record = version.layer_outputs
    assert record is not None and record.file == "model.onnx" and record.kind == "real" and record.inputs >= 1
    with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
        model, _ = load_checkpoint(version.training.checkpoint)
    net = serving_copy(model)
    image = _digit(card.input.shape)
    reference = _outputs(net, torch.from_numpy(image))
    _check_covers_the_network(record, net, reference)
    # Again, by other means: onnx adds the outputs, and the bound is the card's own.
    values = _onnx_values(quick_repository / name / "1" / record.file, sorted({r.tensor for r in record.layers}), image)
    for layer in record.layers:
        want = reference[layer.holds or layer.name]
        got = values[layer.tensor]
        bound = max(record.atol, record.rtol * float(np.abs(want).max()))
        assert got.shape == want.shape and np.abs(got - want).max() <= bound, layer.name
        assert list(got.shape[1:]) == layer.shape
    if name == "resnet18":  # the shared ReLU's second call is the block's output; conv1's batch norm is folded
        assert record.find("layer1.0.relu#2").tensor == record.find("layer1.0").tensor
        assert record.find("conv1").holds == "bn1" and record.find("conv1").tensor == record.find("bn1").tensor


def _digit(shape: list[int]) -> np.ndarray:
    """A real digit (scikit-learn's first), stretched to the model's input and roughly normalised."""
    from PIL import Image
    from sklearn.datasets import load_digits

    pixels = Image.fromarray((load_digits().images[0] * 255 / 16).astype(np.uint8)).resize(tuple(shape[1:]))
    x = (np.asarray(pixels, np.float32) / 255.0 - 0.3) / 0.4
    return np.array(np.broadcast_to(x, shape)[None], dtype=np.float32)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _randomised(name: str) -> nn.Module:
    """The network with seeded random weights and batch norms that are far from identities."""
    torch.manual_seed(0)
    model = models.create_model(name, num_classes=10, **RECIPES[name].options).eval()
    head = getattr(model, "classifier", None)
    first = next((m for m in head if isinstance(m, nn.Linear)), None) if isinstance(head, nn.Sequential) else None
    if first is not None and first.in_features * first.out_features > 10_000_000:
        model.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(first.in_features, 10))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in DEFAULT_SET if n not in QUICK])  # QUICK: built for real above
def test_every_network_of_the_default_set_maps_its_layers(tmp_path: Path, name: str) -> None:
    model = _randomised(name)
    size = RECIPES[name].image_size
    shape = (model.info.input_size[0], size, size)
    path = export_onnx(model, tmp_path / "model.onnx", shape)
    net = serving_copy(model)
    real = np.random.default_rng(1).uniform(-1.5, 1.5, (4, *shape)).astype(np.float32)  # image-like range
    record = record_layer_outputs(net, path, shape, real, folded=read_metadata(path).get("folded_pooling"))
    reference = _outputs(net, torch.from_numpy(real[:1]))
    _check_covers_the_network(record, net, reference)
    assert record.kind == "real" and record.inputs == 4
    blocks = [layer for layer in record.layers if layer.block and len(layer.shape) == 3]
    assert len(blocks) >= 3
    for reason in record.left_out.values():
        assert reason  # every layer without a tensor says why
    if read_metadata(path).get("folded_pooling"):
        assert "folded" in record.left_out["avgpool"]


def test_a_tensor_that_differs_from_pytorch_fails_the_build(tmp_path: Path) -> None:
    model = _randomised("lenet5")
    path = export_onnx(model, tmp_path / "model.onnx", (1, 32, 32))
    net = serving_copy(model)
    with torch.no_grad():
        net.features[3].bias += 0.5  # the file no longer computes what the network does from here on
    with pytest.raises(ExportError, match=r"layer features\.3 \(Conv2d\).*differs from PyTorch"):
        record_layer_outputs(net, path, (1, 32, 32))


def test_random_inputs_when_there_are_no_real_ones(tmp_path: Path) -> None:
    model = _randomised("lenet5")
    path = export_onnx(model, tmp_path / "model.onnx", (1, 32, 32))
    record = record_layer_outputs(serving_copy(model), path, (1, 32, 32))
    assert record.kind == "random" and record.left_out == {}
    assert [layer.name for layer in record.layers if layer.block][:3] == ["features.0", "features.1", "features.2"]
