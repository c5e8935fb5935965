"""A per-layer summary read from an ONNX graph alone: no torch, any producer.

:func:`summarize_graph` gives the same record as ``models.summarize`` (``repository.SummaryRecord``)
for a file this project did not build, so that ``/models/{name}/summary`` and the page's explorer show
an imported network layer by layer:

* **shapes**: ONNX shape inference, the batch dimension set to 1; where symbolic shapes stay unknown,
  one ONNX Runtime run on a zero input gives every node's output (:func:`_shapes`);
* **parameters**: the elements of each initializer, counted at the first node that reads it (integer
  shapes and indices, and 0-d constants such as a Clip's bounds, are not parameters);
* **MACs**: Conv and ConvTranspose (per output element, the kernel's inputs), Gemm and MatMul (per
  output element, the shared dimension); every other op counts none, as ``models.summarize`` counts;
* **layers**: the nodes of one module are one row, named as the module is in the network that was
  exported: the module scope the torch exporter writes into each node (``pkg.torch.onnx.name_scopes``),
  else the path of a TorchScript-style node name (``/features/features.0/Conv``: ``features.0``), else the node's own
  weight's name, else the node's name. A prefix that every name shares (the export wrapper's
  ``network.``) is left out.

An exporter that folds a BatchNorm into the convolution before it leaves one Conv with a bias the
network did not have: ``folded_batchnorms`` names them, with their channels C, and the parameter counts
then differ by the folding rule (per fold, BatchNorm's weight and bias, 2C, out; the convolution's new
bias, C, in).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from repository import LayerRecord, SummaryRecord

__all__ = ["GraphSummary", "LayerTensor", "summarize_graph"]

_SCOPES = "pkg.torch.onnx.name_scopes"
_ELEMENT_BYTES = {onnx.TensorProto.FLOAT: 4, onnx.TensorProto.FLOAT16: 2, onnx.TensorProto.DOUBLE: 8}


@dataclass(frozen=True)
class LayerTensor:
    """Where a row's output is in the graph: the tensor its last node writes, and a convolution's weight."""

    tensor: str
    weight: str | None


@dataclass(frozen=True)
class GraphSummary:
    summary: SummaryRecord
    tensors: list[LayerTensor]  # one per row of summary.layers
    folded_batchnorms: dict[str, int] = field(default_factory=dict)  # layer -> channels of the bias it gained
    producer: str = ""


def summarize_graph(model: onnx.ModelProto, name: str) -> GraphSummary:
    """The per-layer summary of ``model`` (one image-like input, batch 1)."""
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    (image,) = [i for i in graph.input if i.name not in initializers]
    input_shape = _dims(image.type.tensor_type.shape)[1:]
    shapes = _shapes(model, image.name, input_shape)
    rows: list[_Row] = []
    seen: set[str] = set()
    for node in graph.node:
        params = [
            initializers[i] for i in node.input if i in initializers and i not in seen and _is_weight(initializers[i])
        ]
        seen.update(t.name for t in params)
        row = _Row(
            _layer_name(node, initializers),
            node.op_type,
            shapes.get(node.input[0], []) if node.input else [],
            shapes.get(node.output[0], []),
            sum(math.prod(t.dims) for t in params),
            _macs(node, shapes, initializers),
            folded=_folded_bias(node, initializers),
            tensor=node.output[0] if node.output else "",
            weight=node.input[1] if node.op_type == "Conv" and node.input[1] in initializers else None,
        )
        if rows and rows[-1].name == row.name:
            rows[-1] = rows[-1].merged(row)
        else:
            rows.append(row)
    prefix = _common_prefix([r.name for r in rows])
    layers = [r.record(r.name.removeprefix(prefix) or r.name) for r in rows]
    element = _ELEMENT_BYTES.get(image.type.tensor_type.elem_type, 4)
    total = sum(r.params for r in layers)
    summary = SummaryRecord(
        model=name,
        input_shape=input_shape,
        layers=layers,
        total_params=total,
        trainable_params=total,
        non_trainable_params=0,
        total_macs=sum(r.macs for r in layers),
        param_bytes=sum(
            math.prod(t.dims) * _ELEMENT_BYTES.get(t.data_type, 4) for t in initializers.values() if _is_weight(t)
        ),
        activation_bytes=(math.prod(input_shape) + sum(r.activations for r in layers)) * element,
    )
    folded = {r.name.removeprefix(prefix): r.folded for r in rows if r.folded}
    tensors = [LayerTensor(r.tensor, r.weight) for r in rows]
    return GraphSummary(summary, tensors, folded, f"{model.producer_name} {model.producer_version}".strip())


@dataclass
class _Row:
    name: str
    type: str
    input_shape: list[int]
    output_shape: list[int]
    params: int
    macs: int
    folded: int = 0  # channels of a bias the exporter made by folding a BatchNorm in
    tensor: str = ""  # the output of the row's last node
    weight: str | None = None  # a convolution's weight initializer

    def merged(self, later: _Row) -> _Row:
        """One module's nodes as one row: the first's input, the last's output, everything added up."""
        kind = self.type if self.params or not later.params else later.type
        return _Row(
            self.name,
            kind,
            self.input_shape,
            later.output_shape,
            self.params + later.params,
            self.macs + later.macs,
            self.folded + later.folded,
            later.tensor,
            self.weight or later.weight,
        )

    def record(self, name: str) -> LayerRecord:
        output = self.output_shape[1:]
        return LayerRecord(
            name=name,
            type=self.type,
            input_shape=self.input_shape[1:],
            output_shape=output,
            params=self.params,
            trainable_params=self.params,
            macs=self.macs,
            activations=math.prod(output) if output else 0,
        )


def _is_weight(tensor: onnx.TensorProto) -> bool:
    """Learned values: not the shapes, axes and indices some ops take as constant inputs (64 and 32-bit ints),
    nor the scalars (a Clip's bounds, an LRN's or a normalisation's constants: no layer learns a 0-d tensor)."""
    return bool(tensor.dims) and tensor.data_type not in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)


def _dims(shape: onnx.TensorShapeProto) -> list[int]:
    """A shape's dimensions, an unknown or symbolic one (the batch) as 1."""
    return [d.dim_value if d.HasField("dim_value") else 1 for d in shape.dim]


def _shapes(model: onnx.ModelProto, image: str, input_shape: Sequence[int]) -> dict[str, list[int]]:
    """Every value's shape at batch 1: shape inference, and one ONNX Runtime run if it leaves any unknown."""
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    graph = inferred.graph
    values = (*graph.value_info, *graph.input, *graph.output)
    shapes = {v.name: _dims(v.type.tensor_type.shape) for v in values if v.type.tensor_type.HasField("shape")}
    outputs = [o for n in graph.node for o in n.output if o]
    if all(o in shapes for o in outputs):
        return shapes
    return {**shapes, **_run_shapes(model, image, input_shape, outputs)}


def _run_shapes(
    model: onnx.ModelProto, image: str, input_shape: Sequence[int], outputs: Sequence[str]
) -> dict[str, list[int]]:
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.ValueInfoProto(name=o) for o in outputs if o not in known)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {image: np.zeros((1, *input_shape), np.float32)})
    return {n: list(np.shape(v)) for n, v in zip(names, values, strict=True)}


def _layer_name(node: onnx.NodeProto, initializers: dict[str, onnx.TensorProto]) -> str:
    """The module the node belongs to (see the module's docstring); an op outside any module is named by its op."""
    weight = next((i for i in node.input[1:2] if i in initializers), "")
    if weight.endswith(".weight"):  # a folded Conv carries its BatchNorm's scope, but is its convolution's weight
        return weight.removesuffix(".weight")
    for prop in node.metadata_props:
        if prop.key == _SCOPES:
            scopes = [s.strip(" '\"") for s in prop.value.strip("[]").split(",")]
            modules = [s for s in scopes[:-1] if s]  # the last is the op itself
            return modules[-1] if len(modules) > 1 else scopes[-1]  # the first is the exported wrapper's root
    if node.name.startswith("/") and node.name.count("/") > 1:
        return _scope_path(node.name.strip("/").split("/")[:-1])
    return weight or node.name or f"{node.op_type}_{node.output[0]}"


def _scope_path(segments: list[str]) -> str:
    """A TorchScript-style scope (``features``, ``features.2``, ``relu``) as the module's name, ``features.2.relu``:
    a segment with a dot is already qualified from the root; those after it are its children's attributes."""
    qualified = max((i for i, s in enumerate(segments) if "." in s), default=0)
    return ".".join(segments[qualified:])


def _attribute(node: onnx.NodeProto, key: str, default: int) -> int:
    for a in node.attribute:
        if a.name == key:
            return int(onnx.helper.get_attribute_value(a))
    return default


def _macs(node: onnx.NodeProto, shapes: dict[str, list[int]], initializers: dict[str, onnx.TensorProto]) -> int:
    output = shapes.get(node.output[0]) if node.output else None
    if not output:
        return 0
    op = node.op_type
    if op in ("Conv", "ConvTranspose"):
        weight = _shape_of(node.input[1], shapes, initializers)
        if not weight:
            return 0
        kernel = math.prod(weight[2:])
        if op == "Conv":  # weight (C_out, C_in / groups, k...): each output element reads C_in/groups x k inputs
            return math.prod(output) * weight[1] * kernel
        data = shapes.get(node.input[0], [])  # ConvTranspose: each input element writes C_out/groups x k outputs
        return math.prod(data) * weight[1] * kernel if data else 0
    if op in ("Gemm", "MatMul"):
        a = _shape_of(node.input[0], shapes, initializers)
        if not a:
            return 0
        shared = a[0] if op == "Gemm" and _attribute(node, "transA", 0) else a[-1]
        return math.prod(output) * shared
    return 0


def _shape_of(name: str, shapes: dict[str, list[int]], initializers: dict[str, onnx.TensorProto]) -> list[int]:
    if name in initializers:
        return list(initializers[name].dims)
    return shapes.get(name, [])


def _folded_bias(node: onnx.NodeProto, initializers: dict[str, onnx.TensorProto]) -> int:
    """Channels of a Conv bias that the torch exporter made from a BatchNorm (named ``<weight>_bias``)."""
    if node.op_type != "Conv" or len(node.input) < 3:
        return 0
    bias = initializers.get(node.input[2])
    if bias is None or not node.input[2].endswith("weight_bias"):
        return 0
    return int(numpy_helper.to_array(bias).size)


def _common_prefix(names: Sequence[str]) -> str:
    """The dotted prefix (``network.``) that every module's name starts with, if they all have one."""
    modules = [n for n in names if "." in n]
    if not modules:
        return ""
    prefix = modules[0].split(".", 1)[0] + "."
    return prefix if all(n.startswith(prefix) for n in modules) else ""
