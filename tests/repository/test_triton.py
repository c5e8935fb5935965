"""Triton's config.pbtxt from a card: dims without the batch, NCHW images, dynamic batching; bad shapes refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from repository import TRITON_CONFIG_FILE, Batching, ModelCard, TensorSpec
from repository.triton import render_config, write_config
from tests.repository.cards import CREATED, card_fields

EXPECTED = """\
# Written by cnnserve from tiny/model.json (repository/triton.py); rebuild instead of editing.
name: "tiny"
platform: "onnxruntime_onnx"
backend: "onnxruntime"
default_model_filename: "model.onnx"
max_batch_size: 8
input [
  {
    name: "input"
    data_type: TYPE_FP32
    format: FORMAT_NCHW
    dims: [ 1, 4, 4 ]
  }
]
output [
  {
    name: "logits"
    data_type: TYPE_FP32
    dims: [ 3 ]
  },
  {
    name: "probabilities"
    data_type: TYPE_FP32
    dims: [ 3 ]
  }
]
dynamic_batching {
  preferred_batch_size: [ 4, 8 ]
  max_queue_delay_microseconds: 700
}
version_policy: { latest: { num_versions: 1 } }
"""


def _card(**updates: object) -> ModelCard:
    return ModelCard(**card_fields(**updates), versions={}, created=CREATED)


def test_render_config_of_a_card() -> None:
    assert render_config(_card()) == EXPECTED


def test_dims_leave_out_the_batch_and_only_an_image_is_nchw() -> None:
    card = _card(
        inputs=[
            TensorSpec(name="image", shape=[-1, 3, 32, 32]),
            TensorSpec(name="scale", dtype="int64", shape=[-1, 2]),
        ],
        outputs=[TensorSpec(name="logits", dtype="float16", shape=[-1, 10])],
    )
    blocks = render_config(card).split("  {\n")[1:]
    assert blocks[0].splitlines()[:4] == [
        '    name: "image"',
        "    data_type: TYPE_FP32",
        "    format: FORMAT_NCHW",
        "    dims: [ 3, 32, 32 ]",
    ]
    assert blocks[1].splitlines()[:3] == ['    name: "scale"', "    data_type: TYPE_INT64", "    dims: [ 2 ]"]
    assert blocks[2].splitlines()[:3] == ['    name: "logits"', "    data_type: TYPE_FP16", "    dims: [ 10 ]"]


def test_dynamic_batching_follows_the_card() -> None:
    config = render_config(_card(batching=Batching(max_batch_size=64, max_queue_delay_microseconds=0)))
    assert "max_batch_size: 64\n" in config
    assert "dynamic_batching {\n  max_queue_delay_microseconds: 0\n}\n" in config
    assert "preferred_batch_size" not in config


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ([1, 1, 4, 4], r"the first dimension must be the dynamic batch \(-1\), got \[1, 1, 4, 4\]"),
        ([], "the first dimension must be the dynamic batch"),
        ([-1, 1, -1, 4], r"only the batch dimension may be dynamic, got \[-1, 1, -1, 4\]"),
        ([-1, 0, 4, 4], "only the batch dimension may be dynamic"),
    ],
)
def test_a_batch_dimension_that_is_not_dynamic_is_refused(shape: list[int], message: str) -> None:
    card = _card(inputs=[TensorSpec(name="input", shape=shape)])
    with pytest.raises(ValueError, match=f"^input: {message}"):
        render_config(card)


def test_a_dtype_triton_lacks_is_refused() -> None:
    card = _card(outputs=[TensorSpec(name="logits", dtype="complex64", shape=[-1, 3])])
    with pytest.raises(ValueError, match="logits: no Triton type for dtype 'complex64'"):
        render_config(card)


def test_write_config_writes_the_rendering(tmp_path: Path) -> None:
    card = _card()
    path = write_config(tmp_path / "tiny", card)
    assert path == tmp_path / "tiny" / TRITON_CONFIG_FILE
    assert path.read_text() == render_config(card)
