"""The repository ``export.build`` writes: layout, cards, ONNX files, config.pbtxt, and ``verify``.

Most tests read the session's ``quick_repository`` (lenet5 and resnet18, quick-trained); the
tampering tests work on a copy of one model.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

import models
from export.cli import main
from export.measure import make_session
from export.onnx_export import graph_signature, read_metadata
from export.verify import verify_repository
from repository import TRITON_CONFIG_FILE, VARIANT_FILES, ModelCard, Repository
from repository.store import umask

NAMES = ("lenet5", "resnet18")


def card_of(root: Path, name: str) -> ModelCard:
    return Repository(root).load_card(name)


def model_config_pb2():
    """Triton's ModelConfig proto module. ``tritonclient.grpc`` needs grpcio to import, the generated
    module itself only protobuf, so it is loaded from its file."""
    tritonclient = pytest.importorskip("tritonclient")
    path = Path(tritonclient.__file__).parent / "grpc" / "model_config_pb2.py"
    if not path.is_file():
        pytest.skip("tritonclient ships no model_config_pb2")
    spec = importlib.util.spec_from_file_location("_triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -------------------------------------------------------------------------------------- layout


def _digits_as_stored() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as 8-bit pixels (its 0..16 grey levels scaled to 0..255), and their classes."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.rint(bunch.images * 255 / 16).astype(np.uint8), bunch.target


def test_layout(quick_repository: Path) -> None:
    repo = Repository(quick_repository)
    assert repo.names() == sorted(NAMES)
    for name in NAMES:
        card = repo.load_card(name)
        folder = quick_repository / name
        expected = {"model.json", TRITON_CONFIG_FILE, "1"}
        assert {p.name for p in folder.iterdir()} == expected, "no staging folders or stray files"
        published = {v.file for v in card.versions[1].variants.values() if v.published}
        assert {p.name for p in (folder / "1").iterdir()} == published | {"samples"}
        assert sorted(p.name for p in (folder / "1" / "samples").iterdir()) == sorted(
            s.file for s in card.versions[1].samples
        )
        assert VARIANT_FILES["fp32"] in published
        assert repo.check(name) == []
        # Readable by other users, as the files are: the images serve it as an unprivileged user.
        for path in (folder / "1", folder / "model.json", folder / TRITON_CONFIG_FILE):
            assert path.stat().st_mode & 0o044 == 0o044 & ~umask(), f"{path} is {oct(path.stat().st_mode)}"


@pytest.mark.parametrize("name", NAMES)
def test_samples_are_held_out_test_images(quick_repository: Path, name: str) -> None:
    """Each sample is, pixel for pixel, a digit of the test split, of its label, and equal to no training image."""
    from PIL import Image

    from training.data import SPLIT_FRACTIONS, SPLIT_SEED, stratified_split

    card = card_of(quick_repository, name)
    samples = card.versions[1].samples
    assert [s.label for s in samples] == [str(d) for d in range(10) for _ in range(2)]  # two per class
    assert all(card.labels[s.index] == s.label for s in samples)
    pixels, targets = _digits_as_stored()
    train, val, test = stratified_split(targets, SPLIT_FRACTIONS, SPLIT_SEED)
    for sample in samples:
        with Image.open(quick_repository / name / "1" / "samples" / sample.file) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "L", (8, 8))
            found = np.flatnonzero((pixels == np.asarray(image)).all(axis=(1, 2)))
        assert len(found) >= 1, f"{sample.file} is no digit of the data set"
        assert set(found) <= set(test) and not set(found) & (set(train) | set(val)), sample.file
        assert {str(targets[i]) for i in found} == {sample.label}


@pytest.mark.parametrize("name", NAMES)
def test_card(quick_repository: Path, name: str) -> None:
    card = card_of(quick_repository, name)
    info = models.get_model_info(name)
    assert card.name == name and card.latest_version == 1 and list(card.versions) == [1]
    assert card.quick and "QUICK" in card.description
    assert card.architecture.name == name and card.architecture.family == info.family
    assert card.architecture.options["num_classes"] == 10
    assert card.labels == [str(i) for i in range(10)]
    assert card.input.layout == "NCHW" and card.input.dtype == "float32"
    assert card.input.color_mode == ("L" if card.input.channels == 1 else "RGB")
    assert card.input.crop == card.input.shape[1] and len(card.input.mean) == card.input.channels
    assert card.inputs[0].name == "input" and card.inputs[0].shape == [-1, *card.input.shape]
    assert [o.name for o in card.outputs] == ["logits", "probabilities"]
    assert all(o.shape == [-1, 10] for o in card.outputs)
    # Summaries in the schema of models.summarize: the served configuration and the canonical one.
    assert card.summary.model == name and card.summary.input_shape == card.input.shape
    assert card.canonical_summary.input_shape == list(info.input_size)
    assert card.summary.total_params == sum(layer.params for layer in card.summary.layers)
    version = card.versions[1]
    training = version.training
    assert training.source == "checkpoint" and training.data == "digits" and training.quick is True
    assert set(training.split_sizes) == {"train", "val", "test"} and training.split_sizes["train"] <= 256
    assert training.epochs >= 1 and training.recipe["epochs"] == training.epochs
    assert training.metrics.test_top1 is not None and training.metrics.test_top5 is not None
    assert training.seconds > 0 and len(training.source_sha256) == 64


@pytest.mark.parametrize("name", NAMES)
def test_verification_recorded(quick_repository: Path, name: str) -> None:
    card = card_of(quick_repository, name)
    check = card.versions[1].verification
    assert check.onnx_checker["fp32"] == "passed"
    parity = check.parity
    # 1e-4, or ten parts in a million of the largest logit where logits exceed 10.
    assert (parity.atol, parity.rtol) == (1e-4, 1e-5)
    assert parity.tolerance == max(1e-4, 1e-5 * parity.max_abs_logit)
    assert parity.passed and parity.max_abs_diff <= parity.tolerance and parity.top1_agreement == 1.0
    assert parity.random.count > 0 and parity.real.count > 0
    fp32, pytorch = check.accuracy["fp32"], check.accuracy["pytorch"]
    assert fp32.count == card.versions[1].training.split_sizes["test"]
    # The test accuracy measured again through ONNX Runtime is PyTorch's (to one image in 359).
    assert abs(fp32.top1 - pytorch.top1) <= 100 / fp32.count + 1e-6
    assert card.versions[1].variants["fp32"].test_top1 == fp32.top1 == check.top1("fp32")
    assert check.opset >= 17 and set(check.tools) == {"torch", "onnx", "onnxruntime"}


# ------------------------------------------------------------------------------------ ONNX files


@pytest.mark.parametrize("name", NAMES)
def test_onnx_file_describes_itself(quick_repository: Path, name: str) -> None:
    card = card_of(quick_repository, name)
    for precision, variant in card.versions[1].variants.items():
        if not variant.published:
            continue
        meta = read_metadata(quick_repository / name / "1" / variant.file)
        assert meta["name"] == name and meta["version"] == 1 and meta["precision"] == precision
        assert meta["labels"] == card.labels
        assert meta["input"] == card.input.model_dump(mode="json")
        assert meta["quick"] is True


@pytest.mark.parametrize("name", NAMES)
def test_onnx_graph(quick_repository: Path, name: str) -> None:
    card = card_of(quick_repository, name)
    path = quick_repository / name / "1" / "model.onnx"
    proto = onnx.load(path)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    batch = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.HasField("dim_value"), "the batch dimension is dynamic"
    inputs, outputs = graph_signature(proto)
    assert inputs == card.inputs and outputs == card.outputs
    session = make_session(path, threads=1)
    for n in (1, 3):
        x = np.random.default_rng(n).standard_normal((n, *card.input.shape), dtype=np.float32)
        logits, probs = session.run(["logits", "probabilities"], {"input": x})
        assert logits.shape == probs.shape == (n, 10)
        e = np.exp(logits - logits.max(1, keepdims=True))
        np.testing.assert_allclose(probs, e / e.sum(1, keepdims=True), atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_int8_variant(quick_repository: Path, name: str) -> None:
    card = card_of(quick_repository, name)
    version = card.versions[1]
    variant, record = version.variants["int8"], version.verification.variants["int8"]
    fp32_top1 = version.variants["fp32"].test_top1
    limit = version.verification.export_options["quantize"]["max_accuracy_drop"]
    assert variant.test_top1 is not None
    assert record.top1_change == pytest.approx(variant.test_top1 - fp32_top1, abs=1e-3)
    assert variant.published == record.published == (record.top1_change >= -limit)
    if not variant.published:
        assert "points below float32" in variant.reason
        assert not (quick_repository / name / "1" / variant.file).exists()
        return
    proto = onnx.load(quick_repository / name / "1" / variant.file)
    ops = [n.op_type for n in proto.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    # Per-channel weights: the first convolution's / linear layer's weight has a vector of scales.
    inits = {i.name: i for i in proto.graph.initializer}
    scale_sizes = [
        int(np.prod(inits[n.input[1]].dims))
        for n in proto.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in inits and len(inits[n.input[0]].dims) > 1
    ]
    assert scale_sizes and max(scale_sizes) > 1
    assert graph_signature(proto) == (card.inputs, card.outputs)
    assert "latency_ms_b1" in version.verification.speed.int8


@pytest.mark.parametrize("name", NAMES)
def test_fp16_variant(quick_repository: Path, name: str) -> None:
    card = card_of(quick_repository, name)
    variant = card.versions[1].variants["fp16"]
    assert variant.test_top1 is not None
    if not variant.published:
        pytest.skip(f"fp16 not published: {variant.reason}")
    proto = onnx.load(quick_repository / name / "1" / variant.file)
    kinds = {i.data_type for i in proto.graph.initializer if len(i.dims) > 1}
    assert kinds == {onnx.TensorProto.FLOAT16}
    assert graph_signature(proto) == (card.inputs, card.outputs), "float32 in and out"


# ------------------------------------------------------------------------------ config.pbtxt


@pytest.mark.parametrize("name", NAMES)
def test_config_pbtxt_is_triton_model_config(quick_repository: Path, name: str) -> None:
    from google.protobuf import text_format

    pb2 = model_config_pb2()
    card = card_of(quick_repository, name)
    config = text_format.Parse((quick_repository / name / TRITON_CONFIG_FILE).read_text(), pb2.ModelConfig())
    assert config.name == name and config.backend == "onnxruntime" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == card.batching.max_batch_size > 0
    assert config.HasField("dynamic_batching")
    assert config.dynamic_batching.max_queue_delay_microseconds == card.batching.max_queue_delay_microseconds
    inputs, outputs = graph_signature(quick_repository / name / "1" / "model.onnx")
    fp32 = pb2.DataType.Value("TYPE_FP32")
    # Triton's dims leave out the batch dimension (max_batch_size > 0).
    assert [(t.name, list(t.dims), t.data_type) for t in config.input] == [(t.name, t.shape[1:], fp32) for t in inputs]
    assert [(t.name, list(t.dims), t.data_type) for t in config.output] == [
        (t.name, t.shape[1:], fp32) for t in outputs
    ]


# ------------------------------------------------------------------------------------- verify


def test_verify_passes_on_the_built_repository(quick_repository: Path, capsys: pytest.CaptureFixture) -> None:
    assert verify_repository(quick_repository) == []
    assert main(["verify", "--repository", str(quick_repository)]) == 0
    assert "ok" in capsys.readouterr().out


def _truncate(folder: Path) -> None:
    path = folder / "1" / "model.onnx"
    path.write_bytes(path.read_bytes()[:-100])


def _flip_byte(folder: Path) -> None:
    path = folder / "1" / "model.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_card(change) -> callable:
    def edit(folder: Path) -> None:
        card = json.loads((folder / "model.json").read_text())
        change(card)
        (folder / "model.json").write_text(json.dumps(card, indent=2))

    return edit


def _remove_version(folder: Path) -> None:
    shutil.rmtree(folder / "1")


def _stray_version(folder: Path) -> None:
    shutil.copytree(folder / "1", folder / "2")


def _edit_config(folder: Path) -> None:
    path = folder / TRITON_CONFIG_FILE
    path.write_text(path.read_text().replace("max_batch_size: 32", "max_batch_size: 64"))


def _swap_variant(folder: Path) -> None:
    # A valid ONNX file under the wrong name, its hash written into the card: the metadata tells.
    from repository import sha256_file

    shutil.copy(folder / "1" / "model.int8.onnx", folder / "1" / "model.onnx")
    card = json.loads((folder / "model.json").read_text())
    fp32 = card["versions"]["1"]["variants"]["fp32"]
    fp32["sha256"], fp32["bytes"] = (
        sha256_file(folder / "1" / "model.onnx"),
        (folder / "1" / "model.onnx").stat().st_size,
    )
    (folder / "model.json").write_text(json.dumps(card, indent=2))


def _misrecorded_layer(folder: Path) -> None:
    # The card sealed again after the edit (as a faulty build would have written it): only the file tells.
    from repository.publish import card_digests

    card = ModelCard.model_validate_json((folder / "model.json").read_text())
    version = card.versions[1]
    record = version.layer_outputs
    layers = [record.layers[0].model_copy(update={"tensor": "no_such_tensor"}), *record.layers[1:]]
    version = version.model_copy(update={"layer_outputs": record.model_copy(update={"layers": layers})})
    digests = card_digests(card, version)
    sealed = version.model_copy(update={"verification": version.verification.model_copy(update={"digests": digests})})
    Repository(folder.parent).write_card(card.model_copy(update={"versions": {1: sealed}}))


TAMPERING = {
    "truncated file": (_truncate, "bytes"),
    "corrupted byte": (_flip_byte, "sha256"),
    "edited label": (_edit_card(lambda c: c["labels"].__setitem__(0, "zero")), "changed after publishing"),
    "edited description": (_edit_card(lambda c: c.update(description="better")), "changed after publishing"),
    "edited accuracy": (
        _edit_card(lambda c: c["versions"]["1"]["variants"]["fp32"].update(test_top1=99.9)),
        "changed after publishing",
    ),
    "invalid card": (_edit_card(lambda c: c.pop("labels")), "invalid model card"),
    "missing version": (_remove_version, "folder is missing"),
    "stray version": (_stray_version, "not in the card"),
    "edited config": (_edit_config, TRITON_CONFIG_FILE),
    "swapped file": (_swap_variant, "precision"),
    "a layer tensor the file lacks": (_misrecorded_layer, "lacks the tensors the card records for layer(s) features.0"),
}


@pytest.mark.parametrize("case", TAMPERING, ids=list(TAMPERING))
def test_verify_catches_tampering(
    quick_repository: Path, tmp_path: Path, case: str, capsys: pytest.CaptureFixture
) -> None:
    tamper, expected = TAMPERING[case]
    shutil.copytree(quick_repository / "lenet5", tmp_path / "lenet5")
    assert verify_repository(tmp_path) == []
    tamper(tmp_path / "lenet5")
    problems = verify_repository(tmp_path)
    assert problems and any(expected in p for p in problems), problems
    assert main(["verify", "--repository", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "lenet5" in err and expected in err


def test_verify_reports_a_missing_or_empty_repository(tmp_path: Path) -> None:
    assert "does not exist" in verify_repository(tmp_path / "nowhere")[0]
    assert "no published model" in verify_repository(tmp_path)[0]
    assert "not in" in verify_repository(tmp_path, ["lenet5"])[0]
