"""The summary's one rendering: the Keras-style text and the markdown table, exactly, with or without torch."""

from __future__ import annotations

import pytest

from repository import LayerRecord, SummaryRecord, render_markdown, render_text

# ResNet's stem convolution (frozen) and a 512 -> 1000 classifier: thousands, M and K units.
STEM = SummaryRecord(
    model="resnet-stem",
    input_shape=[3, 224, 224],
    layers=[
        LayerRecord(
            name="conv1",
            type="Conv2d",
            input_shape=[3, 224, 224],
            output_shape=[64, 112, 112],
            params=9_408,
            trainable_params=0,
            macs=118_013_952,  # 64 x 112 x 112 outputs, each 3 x 7 x 7 multiply-adds
            activations=802_816,
        ),
        LayerRecord(
            name="fc",
            type="Linear",
            input_shape=[512],
            output_shape=[1000],
            params=513_000,
            trainable_params=513_000,
            macs=512_000,
            activations=1_000,
        ),
    ],
    total_params=522_408,
    trainable_params=513_000,
    non_trainable_params=9_408,
    total_macs=118_525_952,
    param_bytes=2_089_632,  # 1.99 MB
    activation_bytes=3_817_376,  # (150,528 input + 802,816 + 1,000) x 4 bytes: 3.64 MB
)

STEM_TEXT = """\
Model: "resnet-stem"  input: 3x224x224
======================================================
Layer (type)    Output Shape          Param #     MACs
======================================================
conv1 (Conv2d)  (None, 64, 112, 112)    9,408  118.01M
fc (Linear)     (None, 1000)          513,000  512.00K
======================================================
Total params: 522,408
Trainable params: 513,000
Non-trainable params: 9,408
Total MACs: 118.53M (118,525,952)
Params size (MB): 1.99
Forward activations size (MB): 3.64"""

STEM_MARKDOWN = "\n".join(
    [
        "**resnet-stem**, input 3x224x224",
        "",
        "| Layer | Type | Output shape | Params | MACs |",
        "|---|---|---|---:|---:|",
        "| `conv1` | Conv2d | 64x112x112 | 9,408 | 118,013,952 |",
        "| `fc` | Linear | 1000 | 513,000 | 512,000 |",
        "",
        "Total params: 522,408 (trainable 513,000, non-trainable 9,408); MACs: 118,525,952; "
        "params 1.99 MB; activations 3.64 MB",
    ]
)


def test_render_text_reads_like_keras() -> None:
    assert render_text(STEM) == STEM_TEXT
    assert STEM.to_text() == STEM_TEXT


def test_render_markdown() -> None:
    assert render_markdown(STEM) == STEM_MARKDOWN
    assert STEM.to_markdown() == STEM_MARKDOWN


def test_render_text_without_layers_keeps_the_header_widths() -> None:
    empty = STEM.model_copy(update={"layers": []})
    lines = render_text(empty).splitlines()
    assert lines[1:5] == ["=" * 41, "Layer (type)  Output Shape  Param #  MACs", "=" * 41, "=" * 41]


def test_units_from_plain_to_giga() -> None:
    layer = STEM.layers[0]
    rows = [layer.model_copy(update={"name": f"l{i}", "macs": macs}) for i, macs in enumerate((999, 2_500_000_000))]
    text = render_text(STEM.model_copy(update={"layers": rows}))
    assert text.splitlines()[4].endswith("  999") and text.splitlines()[5].endswith("2.50G")


def test_the_json_round_trip_renders_as_models_summarize_does() -> None:
    """What the card stores (JSON, read back without torch) renders as the torch side's summary."""
    pytest.importorskip("torch")
    import models

    summary = models.summarize(models.create_model("lenet5"), (1, 32, 32))
    stored = SummaryRecord.model_validate_json(summary.to_json())
    assert render_text(stored) == summary.to_text()
    assert render_markdown(stored) == summary.to_markdown()
    assert "Total params: 61,706" in render_text(stored)


# STEM as two blocks at depth 1: their rows, their MACs and activations (parameters stay the model's).
BLOCKS = [
    STEM.layers[0].model_copy(update={"name": "stem", "type": "Sequential"}),
    STEM.layers[1].model_copy(update={"name": "head", "type": "Sequential", "activations": 0}),
]
WITH_DEPTHS = STEM.model_copy(update={"depths": {1: BLOCKS}})


def test_a_summary_without_depths_writes_none() -> None:
    """Cards published before depths existed carry digests of their JSON: it must read back unchanged."""
    assert "depths" not in STEM.to_dict()
    assert SummaryRecord.model_validate_json(STEM.to_json()) == STEM


def test_depths_round_trip_through_json() -> None:
    data = WITH_DEPTHS.to_dict()
    assert list(data["depths"]) == ["1"]  # JSON object keys
    assert SummaryRecord.model_validate_json(WITH_DEPTHS.to_json()) == WITH_DEPTHS


def test_at_depth_is_the_summary_of_those_rows() -> None:
    view = WITH_DEPTHS.at_depth(1)
    assert view.layers == BLOCKS and view.depths == {}
    assert (view.total_params, view.param_bytes) == (STEM.total_params, STEM.param_bytes)
    assert view.total_macs == sum(r.macs for r in BLOCKS)
    assert view.activation_bytes == (150_528 + 802_816) * 4  # the input and the rows' outputs, float32
    assert WITH_DEPTHS.to_text() == STEM.to_text()  # the leaves' table is unchanged by the depths


def test_past_the_deepest_depth_every_row_is_a_leaf() -> None:
    """As ``summarize(depth=d)`` for d past the deepest block: the modules that deep are all leaves."""
    for depth in (2, 7):
        view = WITH_DEPTHS.at_depth(depth)
        assert view.layers == WITH_DEPTHS.layers and view.depths == {}
        assert (view.total_macs, view.activation_bytes) == (WITH_DEPTHS.total_macs, WITH_DEPTHS.activation_bytes)


def test_a_summary_written_before_depths_names_none_stored() -> None:
    with pytest.raises(ValueError, match=r"depths stored: none \(only the leaf layers\)"):
        STEM.at_depth(1)
