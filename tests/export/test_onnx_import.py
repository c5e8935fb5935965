"""``python -m export import-onnx``: an image classifier exported elsewhere, published, served and summarised.

The networks are the tests' own (tests/export/onnx_files.py), exported by torch's TorchScript exporter
as a user would: TinySqueeze (SqueezeNet's fire module, which the zoo lacks), its logits and its
probabilities. A published version must load in Triton's layout (``python -m repository check``),
answer through the service exactly as a bare ONNX Runtime session of the file does (<= 1e-5), carry
its exact parameter count, and show its feature maps and filters. Bad files publish nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from export.cli import main as export_main
from export.onnx_import import OnnxImportError, import_onnx, preprocessing
from repository import Repository
from tests.service.live import LiveServer, make_settings

from .onnx_files import export_torchscript, graph_file, image_input, tiny_squeeze

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("onnx")
    return {
        "logits": export_torchscript(tiny_squeeze(), folder / "squeeze.onnx"),
        "probabilities": export_torchscript(tiny_squeeze(softmax=True), folder / "squeeze-softmax.onnx"),
    }


@pytest.fixture(scope="module")
def published(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    repository = tmp_path_factory.mktemp("imported") / "model_repository"
    code = export_main(
        [
            "import-onnx",
            str(files["logits"]),
            "--name",
            "tinysqueeze",
            "--labels",
            "10",
            "--repository",
            str(repository),
        ]
    )
    assert code == 0
    import_onnx(files["probabilities"], name="tinysqueeze-p", labels=list("abcdefghij"), repository=repository)
    return repository


def test_the_card_is_derived_from_the_file(published: Path, files: dict[str, Path]) -> None:
    card = Repository(published).load_card("tinysqueeze")
    assert card.inputs[0].name == "image" and card.inputs[0].shape == [-1, 3, 48, 48]
    assert [o.name for o in card.outputs] == ["scores", "probabilities"]
    assert "Softmax was added" in card.description and card.architecture.family == "imported"
    assert card.input.resize == round(48 * 256 / 224) and card.input.crop == 48 and card.input.mean[0] == 0.485
    assert card.versions[1].verification.opset == 17
    model = tiny_squeeze()
    # The exporter folded the stem's BatchNorm into its convolution: 2C out, the convolution's bias (C) in.
    torch_params = sum(p.numel() for p in model.parameters())
    assert card.summary.total_params == torch_params - 2 * 16 + 16
    with_probabilities = Repository(published).load_card("tinysqueeze-p")
    assert [o.name for o in with_probabilities.outputs] == ["probabilities"], "its own Softmax, renamed, not a second"
    assert with_probabilities.labels == list("abcdefghij")


def test_it_loads_in_tritons_layout(published: Path) -> None:
    check = subprocess.run(
        [sys.executable, "-m", "repository", "check", str(published)], cwd=ROOT, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    config = (published / "tinysqueeze" / "config.pbtxt").read_text()
    assert 'name: "image"' in config and 'name: "probabilities"' in config and "dims: [ 3, 48, 48 ]" in config


def test_served_answers_are_a_bare_sessions(published: Path, files: dict[str, Path]) -> None:
    live = LiveServer(make_settings(published, variants=["fp32"])).start()
    try:
        _check_served(live, published, files)
    finally:
        live.stop()


def _check_served(live: LiveServer, published: Path, files: dict[str, Path]) -> None:
    x = np.random.default_rng(0).standard_normal((3, 3, 48, 48)).astype(np.float32)
    bare = ort.InferenceSession(str(files["logits"]), providers=["CPUExecutionProvider"])
    (scores,) = bare.run(None, {"image": x})
    request = {"inputs": [{"name": "image", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]}
    with live.client() as client:
        answer = client.post("/v2/models/tinysqueeze/infer", json=request).json()
        outputs = {o["name"]: np.array(o["data"], np.float32).reshape(o["shape"]) for o in answer["outputs"]}
        np.testing.assert_allclose(outputs["scores"], scores, atol=1e-5)
        expected = np.exp(scores - scores.max(1, keepdims=True))
        np.testing.assert_allclose(outputs["probabilities"], expected / expected.sum(1, keepdims=True), atol=1e-5)
        summary = client.get("/models/tinysqueeze/summary").json()
        assert summary["total_params"] == Repository(published).load_card("tinysqueeze").summary.total_params
        assert "features.3.expand3" in [layer["name"] for layer in summary["layers"]]
        tensor = {"tensor": x[:1].tolist()}
        maps = client.post("/models/tinysqueeze/activations", json=tensor)
        assert maps.status_code == 200 and "features.3" in [layer["name"] for layer in maps.json()["layers"]]
        filters = client.get("/models/tinysqueeze/filters")
        assert filters.status_code == 200 and filters.json()["shape"] == [16, 3, 3, 3]
        occlusion = client.post("/models/tinysqueeze/occlusion", json=tensor, params={"patch": 16, "stride": 8})
        assert occlusion.status_code == 200 and occlusion.json()["rows"] > 0
        top = client.post("/models/tinysqueeze-p/predict", json=tensor).json()["predictions"][0]["top_k"][0]
        (probabilities,) = ort.InferenceSession(str(files["probabilities"])).run(None, {"image": x[:1]})
        assert top["label"] == "abcdefghij"[int(probabilities.argmax())]
        assert top["probability"] == pytest.approx(float(probabilities.max()), abs=1e-5)


# --- bad files ----------------------------------------------------------------------------------


def _refused(path: Path, repository: Path, match: str, **options) -> None:
    with pytest.raises(OnnxImportError, match=match):
        import_onnx(
            path,
            name="bad",
            labels=options.pop("labels", [str(i) for i in range(10)]),
            repository=repository,
            **options,
        )
    assert not list((repository / "bad").glob("[0-9]*")) and not (repository / "bad" / "model.json").exists()


def test_bad_files_are_refused_and_publish_nothing(files: dict[str, Path], tmp_path: Path) -> None:
    repository = tmp_path / "model_repository"
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\x01 this is not a protobuf \xff" * 10)
    _refused(garbage, repository, "not an ONNX model")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(files["logits"].read_bytes()[:5000])
    _refused(truncated, repository, "not an ONNX model")
    _refused(files["logits"], repository, "has 10 classes but --labels gives 7", labels=list("0123456"))
    _refused(files["logits"], repository, "over the limit", max_bytes=1000)
    fixed = export_torchscript(tiny_squeeze(), tmp_path / "fixed.onnx", dynamic=False)
    _refused(fixed, repository, "fixed batch of 1")
    add = helper.make_node("Add", ["a", "b"], ["sum"])
    flat = helper.make_node("ReduceMean", ["sum"], ["scores"], axes=[2, 3], keepdims=0)
    two = graph_file(tmp_path / "two.onnx", [image_input("a"), image_input("b")], [add, flat], "scores")
    _refused(two, repository, "one float input")
    vector = helper.make_tensor_value_info("v", TensorProto.FLOAT, ["N", 10])
    not_image = graph_file(tmp_path / "vector.onnx", [vector], [helper.make_node("Relu", ["v"], ["scores"])], "scores")
    _refused(not_image, repository, "one float input")
    mystery = helper.make_node("Mystery", ["x"], ["scores"], domain="com.example")
    unknown_op = graph_file(tmp_path / "mystery.onnx", [image_input("x")], [mystery], "scores")
    _refused(unknown_op, repository, "ONNX Runtime cannot run|not a valid ONNX model")


def test_missing_external_data_is_named(files: dict[str, Path], tmp_path: Path) -> None:
    model = onnx.load(str(files["logits"]))
    path = tmp_path / "external.onnx"
    onnx.save(model, str(path), save_as_external_data=True, location="weights.bin", size_threshold=0)
    repository = tmp_path / "model_repository"
    version = import_onnx(path, name="external", labels=[str(i) for i in range(10)], repository=repository)
    assert version == 1, "external data beside the file is read, and the published file holds its weights inline"
    (tmp_path / "weights.bin").unlink()
    _refused(path, repository, "external data")


def test_preprocessing_specs() -> None:
    assert preprocessing("none", 3, 32) == ([0.0] * 3, [1.0] * 3, 32, 32)
    assert preprocessing("mean=0.5,std=0.25,size=32,resize=36", 3, 32) == ([0.5] * 3, [0.25] * 3, 36, 32)
    for bad in ("mean=1/2,size=32", "size=64", "std=0", "colour=1", "mean=x"):
        with pytest.raises(OnnxImportError, match="--preprocessing"):
            preprocessing(bad, 3, 32)


def test_the_cli_says_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = export_main(["import-onnx", str(tmp_path / "absent.onnx"), "--name", "x", "--labels", "3"])
    assert code == 2 and "no such file" in capsys.readouterr().err
    code = export_main(["import-onnx", str(tmp_path / "absent.onnx"), "--name", "Bad Name", "--labels", "3"])
    assert code == 2 and "--name" in capsys.readouterr().err


# --- --eval: accuracy and variants -------------------------------------------------------------------


def _digit_folders(folder: Path, count: int = 60) -> Path:
    """sklearn's digits (the last ``count``, white on black, 8x8 scaled to 32x32) as a folder per class."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for index, (pixels, label) in enumerate(zip(digits.images[-count:], digits.target[-count:], strict=True)):
        target = folder / str(label)
        target.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray((pixels * 255 / 16).astype(np.uint8)).resize((32, 32), Image.Resampling.BILINEAR)
        image.save(target / f"{index}.png")
    return folder


def test_eval_measures_float32_and_judges_the_variants(quick_repository: Path, tmp_path: Path) -> None:
    """LeNet-5's file, imported as a user's: float32's top-1 on a labelled folder, INT8 and float16 by the rule."""
    source = Repository(quick_repository)
    card = source.load_card("lenet5")
    spec = card.input
    onnx_file = source.variant_path("lenet5", card.latest_version, "fp32")
    folder = _digit_folders(tmp_path / "digits")
    repository = tmp_path / "model_repository"
    preprocess = f"mean={spec.mean[0]},std={spec.std[0]},size=32,resize=32"
    import_onnx(
        onnx_file, name="digits", labels=card.labels, repository=repository, preprocess=preprocess, evaluate=folder
    )
    version = Repository(repository).load_card("digits").versions[1]
    accuracy = version.verification.accuracy
    assert set(accuracy) == {"fp32", "int8", "fp16"} and all(a.count == 30 for a in accuracy.values())
    # float32's figure is a bare session's on the held-out half, prepared as the service prepares images.
    from export.import_variants import labelled_images
    from export.measure import evaluate_onnx, make_session

    images, targets = labelled_images(folder, card.labels, Repository(repository).load_card("digits").input)
    assert accuracy["fp32"].top1 == evaluate_onnx(make_session(onnx_file), images[1::2], targets[1::2]).top1
    for precision in ("int8", "fp16"):
        judgement = version.verification.variants[precision]
        assert judgement.top1_change == pytest.approx(accuracy[precision].top1 - accuracy["fp32"].top1, abs=1e-3)
        assert judgement.published == (judgement.top1_change >= -1.0) == version.variants[precision].published
    files = {p.name for p in (repository / "digits" / "1").iterdir()}
    assert files == {v.file for v in version.variants.values() if v.published}


def test_shapes_shape_inference_leaves_open_come_from_one_run(files: dict[str, Path], monkeypatch) -> None:
    """Where ONNX shape inference cannot tell a node's output shape, one ONNX Runtime run on zeros does."""
    from export import graph_summary

    model = onnx.load(str(files["logits"]))
    inferred = graph_summary.summarize_graph(model, "x").summary
    monkeypatch.setattr(graph_summary.shape_inference, "infer_shapes", lambda m, **_: m)  # infers nothing
    run = graph_summary.summarize_graph(model, "x").summary
    assert [r.output_shape for r in run.layers] == [r.output_shape for r in inferred.layers]
    assert run.total_macs == inferred.total_macs > 0
