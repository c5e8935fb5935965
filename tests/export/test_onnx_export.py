"""torch -> ONNX for every family of the zoo: a clean opset >= 17 graph, a dynamic batch, parity.

Each family's network is exported at a small served size (as ``build`` does for the digits).
VGG and AlexNet keep their bodies and adaptive pooling (at these sizes a 1x1 map copied into
the grid: the export folds it into the first linear layer, and parity checks the fold) but get a
small head, so the test writes megabytes, not 500.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import models
from export.measure import compare_sessions, make_session, verify_parity
from export.onnx_export import (
    ExportError,
    ExportOptions,
    check_onnx,
    export_onnx,
    fold_replicated_pooling,
    graph_signature,
    read_metadata,
    serving_copy,
    write_metadata,
)
from export.quantize import QuantizeOptions, export_fp16, quantize_int8
from repository import TensorSpec


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_head(model: nn.Module, width: int) -> nn.Module:
    model.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(width, 10))
    return model


def seeded(name: str, **options) -> nn.Module:
    """``name`` with weights drawn from seed 0, whatever ran before (the global generator is shared)."""
    torch.manual_seed(0)
    return models.create_model(name, **options)


def trained_like(model: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """BatchNorm statistics that are not the identity, as after training."""
    torch.manual_seed(0)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, *shape))
    return model.eval()


# name, builder options, served (C, H, W), head width for small_head (None: keep the head)
FAMILIES = {
    "alexnet": ({}, (3, 67, 67), 256 * 6 * 6),
    "vgg11": ({}, (3, 32, 32), 512 * 7 * 7),
    "nin_cifar": ({}, (3, 32, 32), None),
    "googlenet": ({"aux_logits": True}, (3, 32, 32), None),
    "mobilenet_v1": ({"width_mult": 0.5}, (3, 32, 32), None),
    "mobilenet_v2": ({}, (3, 32, 32), None),
    "efficientnet_b0": ({}, (3, 32, 32), None),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_family_exports_with_parity(name: str, tmp_path: Path) -> None:
    options, shape, head = FAMILIES[name]
    model = seeded(name, num_classes=10, **options)
    if head is not None:
        small_head(model, head)
    trained_like(model, shape)
    path = export_onnx(model, tmp_path / "model.onnx", shape, metadata={"name": name})
    check_onnx(path)
    proto = onnx.load(path)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert {n.domain for n in proto.graph.node} <= {"", "ai.onnx"}, "standard operators only"
    inputs, outputs = graph_signature(proto)
    assert inputs == [TensorSpec(name="input", shape=[-1, *shape])]
    assert outputs == [TensorSpec(name="logits", shape=[-1, 10]), TensorSpec(name="probabilities", shape=[-1, 10])]
    session = make_session(path, threads=1)
    real = np.random.default_rng(1).uniform(-1, 2, (8, *shape)).astype(np.float32)
    report = verify_parity(model, session, shape, real, options=ExportOptions(random_inputs=8, real_inputs=8))
    # The build's own bound: 1e-4, or ten parts in a million of the largest logit (rounding grows with it).
    assert report.passed, report
    assert report.max_abs_diff <= max(1e-4, 1e-5 * report.max_abs_logit) and report.top1_agreement == 1.0
    if name == "googlenet":
        assert model.aux1 is not None, "export drops the auxiliary heads of a copy, not of the model"
        assert "Softmax" in [n.op_type for n in proto.graph.node]


def test_serving_copy_drops_googlenet_aux_and_is_eval() -> None:
    model = models.create_model("googlenet", num_classes=10, aux_logits=True).train()
    net = serving_copy(model)
    assert not net.training and net.aux1 is None and net.aux2 is None
    assert model.training and model.aux1 is not None


@pytest.fixture(scope="module")
def lenet_onnx(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path]:
    torch.set_num_threads(1)
    model = trained_like(seeded("lenet5"), (1, 32, 32))
    path = tmp_path_factory.mktemp("lenet") / "model.onnx"
    export_onnx(model, path, (1, 32, 32), metadata={"name": "lenet5", "version": 3, "labels": list("0123456789")})
    return model, path


def test_metadata_round_trip(lenet_onnx: tuple[nn.Module, Path], tmp_path: Path) -> None:
    _, path = lenet_onnx
    meta = read_metadata(path)
    assert meta == {"name": "lenet5", "version": 3, "labels": list("0123456789")}
    assert onnx.load(path).model_version == 3
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(path.read_bytes())
    write_metadata(copy, {"name": "other", "precision": "fp32"})
    assert read_metadata(copy) == {"name": "other", "precision": "fp32"}


def test_dynamic_batch(lenet_onnx: tuple[nn.Module, Path]) -> None:
    model, path = lenet_onnx
    session = make_session(path, threads=1)
    for n in (1, 2, 7, 64):
        x = np.random.default_rng(n).standard_normal((n, 1, 32, 32), dtype=np.float32)
        logits, probs = session.run(None, {"input": x})
        with torch.no_grad():
            np.testing.assert_allclose(logits, model(torch.from_numpy(x)).numpy(), atol=1e-4)
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_wrong_size_is_rejected(lenet_onnx: tuple[nn.Module, Path]) -> None:
    _, path = lenet_onnx
    session = make_session(path, threads=1)
    with pytest.raises(Exception, match=r"(?i)dimension|shape"):
        session.run(None, {"input": np.zeros((1, 1, 28, 28), np.float32)})


def test_parity_failure_is_reported(lenet_onnx: tuple[nn.Module, Path]) -> None:
    _, path = lenet_onnx
    other = trained_like(seeded("lenet5"), (1, 32, 32))
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.5)
    report = verify_parity(other, make_session(path, threads=1), (1, 32, 32), None)
    assert not report.passed and report.max_abs_diff > 1e-4


def test_export_error_says_what_failed(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"lenet|LeNet5"):
        export_onnx(models.create_model("lenet5"), tmp_path / "x.onnx", (1, 20, 20))


def test_int8_and_fp16_variants(lenet_onnx: tuple[nn.Module, Path], tmp_path: Path) -> None:
    model, path = lenet_onnx
    calibration = np.random.default_rng(0).standard_normal((64, 1, 32, 32), dtype=np.float32)
    int8 = quantize_int8(
        path,
        tmp_path / "model.int8.onnx",
        calibration,
        metadata={"precision": "int8"},
        options=QuantizeOptions(calibration_images=32),
    )
    fp16 = export_fp16(model, tmp_path / "model.fp16.onnx", (1, 32, 32), metadata={"precision": "fp16"})
    for variant, precision in ((int8, "int8"), (fp16, "fp16")):
        check_onnx(variant)
        assert read_metadata(variant) == {"precision": precision}
        assert graph_signature(variant) == graph_signature(path), "float32 input and outputs"
        close = compare_sessions(make_session(path, 1), make_session(variant, 1), calibration[:16])
        assert close.top1_agreement >= 0.8 and close.max_abs_diff < 0.5
    assert not list(tmp_path.glob("cnnserve-int8-*")), "the quantizer's temporary files are gone"
    ops = {n.op_type for n in onnx.load(int8).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Softmax"} <= ops


def test_options_validate() -> None:
    with pytest.raises(ValueError, match="opset"):
        ExportOptions(opset=13)
    with pytest.raises(ValueError, match="calibration_method"):
        QuantizeOptions(calibration_method="magic")
    with pytest.raises(ValueError, match="variants"):
        QuantizeOptions(variants=("int4",))


def test_replicated_pooling_is_folded_exactly_where_it_only_copies() -> None:
    torch.manual_seed(0)
    model = models.create_model("vgg11", num_classes=10).eval()
    folded_net = copy.deepcopy(model)
    folded = fold_replicated_pooling(folded_net, (3, 32, 32))  # five pools: a 1x1 map copied into 7x7
    assert folded == {
        "layer": "classifier.0",
        "grid": [7, 7],
        "weights_before": 4096 * 512 * 49,
        "weights_after": 4096 * 512,
    }
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected, got = model(x), folded_net(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item())
    # At 64x64 the map is 2x2: the pool averages and interpolates, nothing to fold.
    assert fold_replicated_pooling(copy.deepcopy(model), (3, 64, 64)) is None
    assert fold_replicated_pooling(models.create_model("resnet18", num_classes=10), (3, 32, 32)) is None
