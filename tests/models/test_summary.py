"""The per-layer summary reproduces the course material's and the published numbers."""

from __future__ import annotations

import json
import time

import pytest
import torch
from torch import nn

import models
from models.__main__ import main as cli
from models.summary import conv_macs, summarize

ROW_FIELDS = {"name", "type", "input_shape", "output_shape", "params", "trainable_params", "macs", "activations"}
TOTAL_FIELDS = {
    "total_params",
    "trainable_params",
    "non_trainable_params",
    "total_macs",
    "param_bytes",
    "activation_bytes",
}


def meta_summary(name: str, shape=None, **kwargs):
    with torch.device("meta"):
        model = models.create_model(name, **kwargs)
    return summarize(model, shape or model.info.input_size)


@pytest.mark.parametrize(
    ("name", "layers", "total"),
    [
        ("keras_example_1", [("Conv2d", [1, 8, 8], 10), ("Sigmoid", [1, 8, 8], 0)], 10),
        (
            "keras_example_2",
            [
                ("Conv2d", [5, 8, 8], 50),
                ("Sigmoid", [5, 8, 8], 0),
                ("Conv2d", [2, 6, 6], 92),
                ("Sigmoid", [2, 6, 6], 0),
            ],
            142,
        ),
        (
            "keras_example_3",
            [
                ("Conv2d", [8, 98, 98], 224),
                ("Sigmoid", [8, 98, 98], 0),
                ("Conv2d", [1, 96, 96], 73),
                ("Sigmoid", [1, 96, 96], 0),
            ],
            297,
        ),
    ],
)
def test_keras_examples(name: str, layers: list, total: int) -> None:
    s = meta_summary(name)
    assert [(r.type, r.output_shape, r.params) for r in s.layers] == layers
    assert (s.total_params, s.trainable_params, s.non_trainable_params) == (total, total, 0)


# The transfer-learning lecture's VGG-16 table: output shape and weight count (biases not counted there) of every conv.
VGG16_TABLE = [
    ([64, 224, 224], 1_728),
    ([64, 224, 224], 36_864),
    ([128, 112, 112], 73_728),
    ([128, 112, 112], 147_456),
    ([256, 56, 56], 294_912),
    ([256, 56, 56], 589_824),
    ([256, 56, 56], 589_824),
    ([512, 28, 28], 1_179_648),
    ([512, 28, 28], 2_359_296),
    ([512, 28, 28], 2_359_296),
    ([512, 14, 14], 2_359_296),
    ([512, 14, 14], 2_359_296),
    ([512, 14, 14], 2_359_296),
]
VGG16_POOLS = [[64, 112, 112], [128, 56, 56], [256, 28, 28], [512, 14, 14], [512, 7, 7]]
VGG16_FCS = [(4096, 102_760_448), (4096, 16_777_216), (1000, 4_096_000)]


def test_vgg16_reproduces_the_lecture_table() -> None:
    s = meta_summary("vgg16")
    convs = [r for r in s.layers if r.type == "Conv2d"]
    assert [(r.output_shape, r.params - r.output_shape[0]) for r in convs] == VGG16_TABLE
    assert [r.output_shape for r in s.layers if r.type == "MaxPool2d"] == VGG16_POOLS
    fcs = [r for r in s.layers if r.type == "Linear"]
    assert [(r.output_shape[0], r.params - r.output_shape[0]) for r in fcs] == VGG16_FCS
    assert s.total_params == 138_357_544


def test_inception_bottleneck_cost_from_the_cnn_course() -> None:
    direct = summarize(nn.Conv2d(192, 32, 5, padding=2), (192, 28, 28))
    assert direct.total_macs == 120_422_400  # "about 120 million multiplies"
    bottleneck = summarize(nn.Sequential(nn.Conv2d(192, 16, 1), nn.Conv2d(16, 32, 5, padding=2)), (192, 28, 28))
    assert bottleneck.total_macs == 12_443_648  # "12.4 million"
    assert [r.macs for r in bottleneck.layers] == [2_408_448, 10_035_200]


def test_inception_module_example() -> None:
    s = meta_summary("inception_module")
    assert s.input_shape == [192, 28, 28] and s.layers[-1].output_shape[1:] == [28, 28]
    with torch.device("meta"):
        out = models.create_model("inception_module")(torch.empty(1, 192, 28, 28))
    assert list(out.shape) == [1, 256, 28, 28]


def test_depthwise_separable_cost_from_the_cnn_course() -> None:
    normal = summarize(nn.Conv2d(3, 5, 3), (3, 6, 6))
    separable = summarize(nn.Sequential(nn.Conv2d(3, 3, 3, groups=3), nn.Conv2d(3, 5, 1)), (3, 6, 6))
    assert normal.total_macs == 2_160
    assert [r.macs for r in separable.layers] == [432, 240] and separable.total_macs == 672
    assert conv_macs(nn.Conv2d(3, 5, 3), [5, 4, 4]) == 2_160


def test_course_convnet_shapes() -> None:
    s = meta_summary("course_convnet")
    convs = [r.output_shape for r in s.layers if r.type == "Conv2d"]
    assert convs == [[10, 37, 37], [20, 17, 17], [40, 7, 7]]
    assert [r.output_shape for r in s.layers if r.type == "Flatten"] == [[1960]]


# torchvision's published multiply-adds (GFLOPS in its model tables), which count conv and linear layers.
PUBLISHED_MACS = {
    "resnet18": 1.814e9,
    "resnet50": 4.089e9,
    "vgg16": 15.470e9,
    "mobilenet_v2": 0.301e9,
    "efficientnet_b0": 0.386e9,
    "googlenet_torchvision": 1.498e9,
}


@pytest.mark.parametrize(("name", "macs"), PUBLISHED_MACS.items())
def test_macs_agree_with_torchvision(name: str, macs: float) -> None:
    assert meta_summary(name).total_macs == pytest.approx(macs, rel=0.01)


def test_mobilenet_v1_params_and_macs() -> None:
    s = meta_summary("mobilenet_v1")
    assert s.total_params == 4_231_976
    assert s.total_macs == pytest.approx(569e6, rel=0.01)


def test_totals_and_trainable_split_on_real_weights() -> None:
    model = models.create_model("lenet5")
    for p in model.features.parameters():
        p.requires_grad_(False)
    s = summarize(model, (1, 32, 32))
    assert s.total_params == 61_706 and s.non_trainable_params == 156 + 2_416
    assert s.trainable_params == sum(r.trainable_params for r in s.layers)
    assert s.param_bytes == 61_706 * 4
    assert s.total_macs == sum(r.macs for r in s.layers) == 416_520
    assert model.training  # the summary leaves the mode as it found it


def test_depth_rows_aggregate_their_children() -> None:
    leaves = meta_summary("resnet18")
    with torch.device("meta"):
        model = models.create_model("resnet18")
    top = summarize(model, (3, 224, 224), depth=1)
    assert [r.name for r in top.layers] == [
        "conv1",
        "bn1",
        "relu",
        "maxpool",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
        "avgpool",
        "fc",
    ]
    assert top.total_macs == leaves.total_macs and sum(r.params for r in top.layers) == top.total_params


def test_every_depth_above_the_leaves_is_recorded_with_them() -> None:
    with torch.device("meta"):
        model = models.create_model("resnet18")
    s = summarize(model, (3, 224, 224))
    assert sorted(s.depths) == [1, 2, 3]  # layer1 (1) . 0 (2) . conv1 (3), downsample . 0 (4): the leaves
    for depth, rows in s.depths.items():
        alone = summarize(model, (3, 224, 224), depth=depth)
        assert rows == alone.layers and alone.depths == {}
        assert s.at_depth(depth) == alone
    assert [r.name for r in s.depths[1]] == [r.name for r in summarize(model, (3, 224, 224), depth=1).layers]
    assert s.to_text() == s.model_copy(update={"depths": {}}).to_text()  # the table is the leaves'


def test_a_network_without_nesting_has_no_depths() -> None:
    assert summarize(nn.Conv2d(1, 2, 3), (1, 8, 8)).depths == {}
    assert summarize(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), (1, 8, 8)).depths == {}


def test_shared_module_is_counted_once() -> None:
    act = nn.ReLU()
    model = nn.Sequential(nn.Conv2d(1, 2, 3), act, nn.Conv2d(2, 2, 3), act)
    s = summarize(model, (1, 8, 8))
    assert len(s.layers) == 4 and s.total_params == sum(r.params for r in s.layers) == 20 + 38
    nested = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3), act), nn.Sequential(nn.Conv2d(2, 2, 3), act))
    s = summarize(nested, (1, 8, 8))
    assert s.depths[1] == summarize(nested, (1, 8, 8), depth=1).layers
    assert [r.params for r in s.depths[1]] == [20, 38]


def test_biggest_network_is_summarized_without_weights_and_fast() -> None:
    start = time.perf_counter()
    s = meta_summary("efficientnet_b7")
    assert s.total_params == 66_347_960 and time.perf_counter() - start < 10


def test_cli_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["summary", "lenet5", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert TOTAL_FIELDS | {"layers", "input_shape", "model", "depths"} == set(data)
    assert all(set(row) == ROW_FIELDS for row in data["layers"]) and data["total_params"] == 61_706
    assert list(data["depths"]) == ["1"] and all(set(row) == ROW_FIELDS for row in data["depths"]["1"])


def test_cli_text_reads_like_keras(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["summary", "keras_example_2"]) == 0
    out = capsys.readouterr().out
    assert "Layer (type)" in out and "Output Shape" in out and "Param #" in out
    assert "(None, 5, 8, 8)" in out and "Total params: 142" in out and "Non-trainable params: 0" in out


def test_cli_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli(["summary", "resnet18", "--input", "3x64x64", "--classes", "10", "--depth", "1", "--format", "markdown"])
        == 0
    )
    out = capsys.readouterr().out
    assert "| `fc` | Linear | 10 |" in out and "input 3x64x64" in out
    assert cli(["list", "vgg1*", "--format", "json"]) == 0
    assert {m["name"] for m in json.loads(capsys.readouterr().out)} == {
        "vgg11",
        "vgg13",
        "vgg16",
        "vgg19",
        "vgg11_bn",
        "vgg13_bn",
        "vgg16_bn",
        "vgg19_bn",
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["summary", "alexnet", "--input", "3x32x32"], "at least"),
        (["summary", "resnet19"], "known models: "),
    ],
)
def test_cli_errors_are_clear(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(argv) == 2
    assert message in capsys.readouterr().err
