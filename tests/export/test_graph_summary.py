"""The summary read from an ONNX graph (export/graph_summary.py) against the one torch records.

For every network of the default set, exported as the build exports it (at its recipe's size; VGG
and AlexNet with a small head, as in test_onnx_export.py, so the test writes megabytes), the
summary of the ONNX file alone must agree with ``models.summarize`` of the same served network:

* total parameters exactly, where the exporter folded a BatchNorm into a convolution by the folding
  rule (BatchNorm's 2C out, the convolution's new bias C in), checked per folded layer;
* MACs within 1%;
* every layer's output shape where the two name the same layer (a module called twice, row by row).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import onnx
import pytest
import torch

import models
from export.graph_summary import summarize_graph
from export.onnx_export import export_onnx, fold_replicated_pooling, serving_copy
from training.recipes import DEFAULT_SET, get_recipe

from .test_onnx_export import seeded, small_head, trained_like

SMALL_HEADS = {"alexnet": 256 * 6 * 6, "zfnet": 512 * 6 * 6, "vgg16": 512 * 7 * 7, "vgg19": 512 * 7 * 7}


def _input_shape(name: str) -> tuple[int, int, int]:
    size = get_recipe(name).image_size
    return (1 if name == "lenet5" else 3, size, size)


def _by_name(rows) -> dict[str, list]:
    grouped = defaultdict(list)
    for row in rows:
        grouped[row.name].append(row)
    return grouped


@pytest.mark.slow
@pytest.mark.parametrize("name", DEFAULT_SET)
def test_graph_summary_agrees_with_torch(name: str, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    shape = _input_shape(name)
    model = seeded(name, num_classes=10)
    if name in SMALL_HEADS:
        small_head(model, SMALL_HEADS[name])
    trained_like(model, shape)
    with torch.no_grad():  # biases as after training: an exporter drops a bias that is all zeros, as initialised
        for module in model.modules():
            if isinstance(getattr(module, "bias", None), torch.Tensor):
                module.bias.add_(0.01 * torch.randn_like(module.bias))
    path = export_onnx(model, tmp_path / "model.onnx", shape)
    served = serving_copy(model)
    fold_replicated_pooling(served, shape)  # what export_onnx exported
    want = models.summarize(served, shape, name=name)

    graph = summarize_graph(onnx.load(path), name)
    got = graph.summary
    torch_rows = _by_name(want.layers)
    batchnorms = {r.name: r.params for r in want.layers if r.type.startswith("BatchNorm")}
    # The folding rule: each BatchNorm's 2C out, its convolution's new bias (C) in.
    assert len(graph.folded_batchnorms) == len(batchnorms), "every BatchNorm folded into its convolution"
    assert sorted(2 * c for c in graph.folded_batchnorms.values()) == sorted(batchnorms.values())
    assert got.total_params == want.total_params - sum(batchnorms.values()) + sum(graph.folded_batchnorms.values())
    assert got.total_macs == pytest.approx(want.total_macs, rel=0.01)
    assert got.input_shape == list(shape)
    compared = 0
    for layer, rows in _by_name(got.layers).items():
        if layer in torch_rows and len(torch_rows[layer]) == len(rows):
            for mine, theirs in zip(rows, torch_rows[layer], strict=True):
                assert mine.output_shape == theirs.output_shape, (layer, mine, theirs)
                compared += 1
    weighted = [r for r in want.layers if r.params and not r.type.startswith("BatchNorm")]
    assert compared >= len(weighted), f"every convolution and linear layer compared ({compared} rows)"


def test_graph_summary_imports_no_torch() -> None:
    import subprocess

    code = "import sys, export.graph_summary; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2]).returncode == 0
