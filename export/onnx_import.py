"""``python -m export import-onnx FILE --name NAME --labels FILE|N``: publish any ONNX image classifier.

A network trained and exported elsewhere (torchvision, timm, Keras through tf2onnx, an ONNX model
zoo file) becomes the next version of ``NAME`` in the repository, as atomically as a build's
(:func:`repository.publish.publish_version`), with a card derived from the file:

* its one image-like input (N, C, H, W) with C 1 or 3 and a dynamic batch (a fixed one is refused,
  saying how to re-export; H and W from ``--input CxHxW`` where the file leaves them open);
* its class output (N, K) with K the labels' count: probabilities when a Softmax makes it, else
  logits, and then a Softmax is added after them in the served file (the card's description says
  so): the service reads ``probabilities`` from every model;
* the preprocessing (``imagenet``, ``none`` or ``mean=..,std=..,size=..,resize=..``), the labels, the
  opset and producer, the files' hashes, and the per-layer summary read from the graph
  (:mod:`export.graph_summary`; torch is never imported);
* ONNX Runtime must build a session of it on the CPU and run a batch of two: an op it cannot run is
  refused here, not at serving time;
* with ``--eval FOLDER`` (a folder of images per class), float32's top-1 on those images, and INT8 and
  float16 variants published by the build's rule (:mod:`export.import_variants`).

Bad files publish nothing: :class:`OnnxImportError` says what is wrong (not ONNX, truncated, no or
two image inputs, external data that is missing, over ``--max-bytes``, a label count that is not the
output's).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from repository import (
    Architecture,
    InputSpec,
    LayerOutput,
    LayerOutputs,
    Repository,
    SummaryRecord,
    TensorSpec,
    VerificationRecord,
    VersionCard,
)
from repository.publish import (
    file_variant,
    load_previous,
    next_version,
    now,
    publish_version,
    staging_dir,
    with_version,
)

from .graph_summary import GraphSummary, summarize_graph
from .import_variants import Evaluated, labelled_images, variants_judged

__all__ = ["MAX_BYTES", "OnnxImportError", "import_onnx", "layer_outputs", "preprocessing", "read_labels"]

MAX_BYTES = 2**31 - 1  # protobuf's limit for one message; larger models keep their weights in external data
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
PROBABILITIES = "probabilities"
_FLOATS = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16", onnx.TensorProto.DOUBLE: "float64"}


class OnnxImportError(ValueError):
    """The file cannot be served as an image classifier; the message says why and what to do."""


@dataclass(frozen=True)
class _ImageInput:
    name: str
    dtype: str
    shape: tuple[int, int, int]  # C, H, W


def read_labels(spec: str) -> list[str]:
    """``N`` (classes "0" to "N-1") or a text file with one label per line."""
    if spec.isdigit():
        return [str(i) for i in range(int(spec))]
    path = Path(spec)
    if not path.is_file():
        raise OnnxImportError(f"--labels {spec!r} is neither a count nor a file of labels, one per line")
    labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not labels:
        raise OnnxImportError(f"{path} has no labels")
    return labels


def preprocessing(spec: str, channels: int, size: int) -> tuple[list[float], list[float], int, int]:
    """``mean, std, resize, crop`` of ``imagenet``, ``none`` or ``mean=a/b/c,std=a/b/c,size=S,resize=R``."""
    if spec == "imagenet":
        mean, std = IMAGENET if channels == 3 else ([sum(IMAGENET[0]) / 3], [sum(IMAGENET[1]) / 3])
        return mean, std, round(size * 256 / 224), size
    if spec == "none":
        return [0.0] * channels, [1.0] * channels, size, size
    try:
        fields = dict(item.split("=", 1) for item in spec.split(","))
        mean = [float(v) for v in fields.pop("mean", "0").split("/")]
        std = [float(v) for v in fields.pop("std", "1").split("/")]
        crop = int(fields.pop("size", size))
        resize = int(fields.pop("resize", crop))
    except ValueError as exc:
        raise OnnxImportError(
            f"--preprocessing {spec!r}: {exc} (e.g. mean=0.5/0.5/0.5,std=0.5/0.5/0.5,size=224)"
        ) from None
    if fields:
        raise OnnxImportError(
            f"--preprocessing {spec!r}: unknown field(s) {', '.join(fields)}; mean, std, size, resize"
        )
    mean, std = (mean * channels if len(mean) == 1 else mean), (std * channels if len(std) == 1 else std)
    if len(mean) != channels or len(std) != channels or min(std) <= 0 or crop != size or resize < crop:
        raise OnnxImportError(
            f"--preprocessing {spec!r}: mean and std need {channels} value(s), std > 0, size the input's {size} and "
            "resize at least size"
        )
    return mean, std, resize, crop


def _load(path: Path, max_bytes: int) -> onnx.ModelProto:
    if not path.is_file():
        raise OnnxImportError(f"{path}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise OnnxImportError(f"{path} is {size:,} bytes, over the limit of {max_bytes:,} (--max-bytes)")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise OnnxImportError(f"{path} is not an ONNX model (truncated, or another format): {exc}") from None
    if not model.graph.node:
        raise OnnxImportError(f"{path} is not an ONNX model: its graph has no nodes")
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        try:
            onnx.load_external_data_for_model(model, str(path.parent))
        except (OSError, ValueError, onnx.checker.ValidationError) as exc:
            raise OnnxImportError(
                f"{path} keeps {len(external)} tensor(s) in external data files that cannot be read ({exc}): "
                "put them beside the file, as the exporter wrote them"
            ) from None
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise OnnxImportError(f"{path} is not a valid ONNX model: {str(exc).splitlines()[0]}") from None
    return model


def _image_input(model: onnx.ModelProto, given: Sequence[int] | None) -> _ImageInput:
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    images = [i for i in inputs if len(i.type.tensor_type.shape.dim) == 4 and i.type.tensor_type.elem_type in _FLOATS]
    if len(inputs) != 1 or len(images) != 1:
        found = ", ".join(f"{i.name} {_dims_text(i)}" for i in inputs) or "none"
        raise OnnxImportError(f"an image classifier takes one float input (N, C, H, W); this one takes {found}")
    (image,) = images
    batch, *chw = image.type.tensor_type.shape.dim
    if batch.HasField("dim_value"):
        raise OnnxImportError(
            f"input {image.name!r} has a fixed batch of {batch.dim_value}: the service batches requests; export it "
            "with a dynamic batch axis (torch.onnx.export(..., dynamic_shapes=...) or dynamic_axes={'input': {0: 'N'}})"
        )
    known = [d.dim_value if d.HasField("dim_value") else None for d in chw]
    shape = tuple(int(g) for g in given) if given else known
    if None in shape or (given and any(k not in (None, g) for k, g in zip(known, shape, strict=True))):
        raise OnnxImportError(f"input {image.name!r} is {_dims_text(image)}: give --input CxHxW that fits it")
    if shape[0] not in (1, 3) or shape[1] != shape[2]:
        raise OnnxImportError(f"input {image.name!r} is {shape}: the service takes square images of 1 or 3 channels")
    return _ImageInput(image.name, _FLOATS[image.type.tensor_type.elem_type], shape)  # type: ignore[arg-type]


def _dims_text(value: onnx.ValueInfoProto) -> str:
    dims = [
        d.dim_param or (str(d.dim_value) if d.HasField("dim_value") else "?") for d in value.type.tensor_type.shape.dim
    ]
    return "[" + ", ".join(dims) + "]"


def _class_output(model: onnx.ModelProto, classes: int) -> tuple[str, bool]:
    """The (N, K) output and whether it holds probabilities (a Softmax makes it)."""
    candidates = [o for o in model.graph.output if len(o.type.tensor_type.shape.dim) == 2]
    if not candidates:
        raise OnnxImportError("no output of shape (N, K): an image classifier answers one score per class")
    output = next((o for o in candidates if o.name == PROBABILITIES), candidates[-1])
    k = output.type.tensor_type.shape.dim[1]
    if k.HasField("dim_value") and k.dim_value != classes:
        raise OnnxImportError(f"output {output.name!r} has {k.dim_value} classes but --labels gives {classes}")
    producer = next((n for n in model.graph.node if output.name in n.output), None)
    return output.name, producer is not None and producer.op_type == "Softmax"


def _served(model: onnx.ModelProto, output: str, probabilities: bool) -> onnx.ModelProto:
    """The graph as served: ``probabilities`` among its outputs (a Softmax added after logits)."""
    served = onnx.ModelProto()
    served.CopyFrom(model)
    if output == PROBABILITIES:
        return served
    if probabilities:  # the tensor is renamed, wherever the graph names it
        for node in served.graph.node:
            node.output[:] = [PROBABILITIES if o == output else o for o in node.output]
            node.input[:] = [PROBABILITIES if i == output else i for i in node.input]
        for o in served.graph.output:
            if o.name == output:
                o.name = PROBABILITIES
        return served
    served.graph.node.append(
        onnx.helper.make_node("Softmax", [output], [PROBABILITIES], axis=-1, name="cnnserve_softmax")
    )
    logits = next(o for o in served.graph.output if o.name == output)
    added = onnx.ValueInfoProto()
    added.CopyFrom(logits)
    added.name = PROBABILITIES
    served.graph.output.append(added)
    return served


def _check_runs(path: Path, image: _ImageInput, classes: int) -> list[str]:
    """The output names after a batch of two ran on ONNX Runtime's CPU provider."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outputs = session.run(None, {image.name: np.zeros((2, *image.shape), dtype=image.dtype)})
    except Exception as exc:  # ONNX Runtime raises its own types for an op it lacks, a bad graph, ...
        raise OnnxImportError(
            f"ONNX Runtime cannot run the model on the CPU: {str(exc).splitlines()[0][:300]}"
        ) from None
    names = [o.name for o in session.get_outputs()]
    scores = dict(zip(names, outputs, strict=True))[PROBABILITIES]
    if scores.shape != (2, classes):
        raise OnnxImportError(f"the class output is {list(scores.shape[1:])} for a batch of 2, not [{classes}]")
    return names


def layer_outputs(graph: GraphSummary, file: str) -> LayerOutputs:
    """Where each row's output is in the served file, for the feature-map and filter views.

    The tensors are the graph's own (there is no other network to compare them with: zero inputs,
    zero differences). A module met again (a shared activation) is ``name#k``, as the build names it;
    the rows with weights, and the merges of branches (Concat, Add), are the activation views' blocks.
    """
    seen: dict[str, int] = {}
    layers = []
    for row, where in zip(graph.summary.layers, graph.tensors, strict=True):
        seen[row.name] = seen.get(row.name, 0) + 1
        layers.append(
            LayerOutput(
                name=row.name if seen[row.name] == 1 else f"{row.name}#{seen[row.name]}",
                type=row.type,
                tensor=where.tensor,
                shape=row.output_shape,
                block=bool(row.params) or row.type in ("Concat", "Add"),
                weight=where.weight,
                max_abs_diff=0.0,
                tolerance=0.0,
            )
        )
    return LayerOutputs(file=file, kind="random", inputs=0, atol=0.0, rtol=0.0, layers=layers)


def _opset(model: onnx.ModelProto) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _card_fields(
    path: Path,
    model: onnx.ModelProto,
    summary: SummaryRecord,
    name: str,
    labels: list[str],
    image: _ImageInput,
    prepared: tuple[list[float], list[float], int, int],
    outputs: list[str],
    output: str,
    probabilities: bool,
) -> dict[str, object]:
    """Every field of the card but its versions; ``prepared``: :func:`preprocessing`'s mean, std, resize, crop."""
    channels = image.shape[0]
    mean, std, resize, crop = prepared
    opset = _opset(model)
    source = hashlib.sha256(path.read_bytes()).hexdigest()
    producer = f"{model.producer_name} {model.producer_version}".strip() or "an unnamed producer"
    added = "" if probabilities or output == PROBABILITIES else f" A Softmax was added after its {output!r} logits."
    return {
        "name": name,
        "description": f"Imported from {path.name} (sha256 {source[:12]}, made by {producer}, opset {opset}).{added}",
        "architecture": Architecture(name=name, family="imported", paper="", options={"source_sha256": source}),
        "labels": labels,
        "input": InputSpec(
            shape=list(image.shape),
            color_mode="L" if channels == 1 else "RGB",
            resize=resize,
            crop=crop,
            mean=mean,
            std=std,
        ),
        "inputs": [TensorSpec(name=image.name, dtype=image.dtype, shape=[-1, *image.shape])],
        "outputs": [TensorSpec(name=n, shape=[-1, len(labels)]) for n in outputs],
        "summary": summary,
        "canonical_summary": summary,
    }


def _evaluated(file: Path, input_name: str, spec: InputSpec, labels: list[str], folder: Path | None) -> Evaluated:
    if folder is None:
        return Evaluated(variants={"fp32": file_variant(file, "fp32")})
    try:
        images, targets = labelled_images(folder, labels, spec)
    except (OSError, ValueError) as exc:
        raise OnnxImportError(str(exc)) from None
    return variants_judged(file, input_name, images, targets)


def import_onnx(
    path: Path,
    *,
    name: str,
    labels: list[str],
    repository: Path,
    input_shape: Sequence[int] | None = None,
    preprocess: str = "imagenet",
    max_bytes: int = MAX_BYTES,
    evaluate: Path | None = None,
) -> int:
    """Publish ``path`` as the next version of ``name`` in ``repository``; returns that version.

    ``evaluate``: a folder of labelled images (a folder per class): the card gets float32's top-1 on it,
    and the INT8 and float16 variants are made and published by the build's rule (:mod:`export.import_variants`).
    """
    model = _load(path, max_bytes)
    image = _image_input(model, input_shape)
    output, probabilities = _class_output(model, len(labels))
    prepared = preprocessing(preprocess, image.shape[0], image.shape[1])  # refused before anything is written
    repo = Repository(repository)
    previous = load_previous(repo, name)
    version = next_version(previous)
    staged = staging_dir(repo, name)
    try:
        served = _served(model, output, probabilities)
        file = staged / "model.onnx"
        onnx.save(served, str(file))  # the weights inline: one file, whatever the original's layout
        names = _check_runs(file, image, len(labels))
        graph = summarize_graph(served, name)
        fields = _card_fields(path, model, graph.summary, name, labels, image, prepared, names, output, probabilities)
        evaluated = _evaluated(file, image.name, fields["input"], labels, evaluate)
        verification = VerificationRecord(
            onnx_checker=dict.fromkeys(evaluated.variants, "passed"),  # each file went through onnx.checker
            accuracy=evaluated.accuracy or None,
            variants=evaluated.judgements or None,
            opset=_opset(model),
        )
        entry = VersionCard(
            version=version,
            created=now(),
            variants=evaluated.variants,
            verification=verification,
            layer_outputs=layer_outputs(graph, file.name),
        )
        publish_version(repo, with_version(fields, previous, entry), staged)
        return version
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
