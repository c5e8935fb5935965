"""service.visualize.onnx_wire against the onnx package: the same weights, a graph ONNX Runtime runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from repository import Repository
from service.visualize.onnx_wire import OnnxFormatError, read_initializer, with_outputs


def _served(repository: Path, name: str) -> Path:
    card = Repository(repository).load_card(name)
    return Repository(repository).variant_path(name, card.latest_version, "fp32")


@pytest.mark.parametrize("name", ["lenet5", "resnet18"])
def test_every_float_initializer_reads_as_onnx_reads_it(repository: Path, name: str) -> None:
    path = _served(repository, name)
    data = path.read_bytes()
    floats = [i for i in onnx.load(path).graph.initializer if i.data_type == onnx.TensorProto.FLOAT]
    assert floats
    for init in floats:
        np.testing.assert_array_equal(read_initializer(data, init.name), numpy_helper.to_array(init))
    with pytest.raises(OnnxFormatError, match="no initializer 'nope'"):
        read_initializer(data, "nope")


def test_extra_outputs_are_what_onnx_would_write(repository: Path) -> None:
    path = _served(repository, "lenet5")
    data = path.read_bytes()
    inner = [n.output[0] for n in onnx.load(path).graph.node[:3]]
    edited = onnx.load_from_string(with_outputs(data, inner))
    assert [o.name for o in edited.graph.output] == ["logits", "probabilities", *inner]
    assert edited.graph.node == onnx.load(path).graph.node and edited.metadata_props == onnx.load(path).metadata_props
    session = ort.InferenceSession(with_outputs(data, inner), providers=["CPUExecutionProvider"])
    x = np.zeros((1, 1, 32, 32), np.float32)
    assert [v.shape[0] for v in session.run(inner, {"input": x})] == [1, 1, 1]


def test_float_data_and_bad_files() -> None:
    weight = helper.make_tensor("w", onnx.TensorProto.FLOAT, [2, 3], [1.0, 2, 3, 4, 5, 6])  # float_data, not raw
    shape = helper.make_tensor("s", onnx.TensorProto.INT64, [1], [6])
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["w", "s"], ["y"])],
        "g",
        [],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [6])],
        [weight, shape],
    )
    data = helper.make_model(graph).SerializeToString()
    np.testing.assert_array_equal(read_initializer(data, "w"), np.arange(1, 7, dtype=np.float32).reshape(2, 3))
    with pytest.raises(OnnxFormatError, match="not a float type"):
        read_initializer(data, "s")
    with pytest.raises(OnnxFormatError):
        read_initializer(data[: len(data) // 2], "w")
    with pytest.raises(OnnxFormatError, match="no graph"):
        with_outputs(b"", ["y"])
