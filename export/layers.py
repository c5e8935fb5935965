"""Which tensor of the exported ONNX graph holds each layer's output, checked against PyTorch's hooks.

The service shows feature maps by asking ONNX Runtime for intermediate tensors of the served
file, so the build records, for every module of the network (each row of the summary at any
depth), the ONNX value that holds its output, and checks it on real inputs: ONNX Runtime's value
against the module's forward-hook output, within the bound of the logits' parity check.

How a module finds its tensor, in the graph the dynamo exporter writes (every node carries
``pkg.torch.onnx.name_scopes``, the module path it was traced in):

* **scope**: the values that nodes inside the module's scope produce and nodes outside it (or
  the graph's outputs) consume, of the module's output shape; a module called k times (ResNet's
  shared ReLU) has k of them, in call order;
* **convolution**: the Conv node that reads ``<module>.weight``. The exporter folds a batch norm
  into the convolution before it (one Conv node in the batch norm's scope, the weight keeping its
  name, its values scaled): the convolution's own output then exists nowhere, and the record says
  its tensor ``holds`` the batch norm's output, which is what the check compares it with;
* **identity**: a module with no node of its own (Dropout and Identity in eval mode) outputs its
  input: the tensor of the layer that produced it.

A layer that cannot be located is left out with the reason (the card says it), unless it is one
the views promise, a convolution or a block with a feature map: then the build fails, as it does
when any of those differs from PyTorch. A located layer outside that set whose values differ is
left out with the difference.
"""

from __future__ import annotations

import ast
import os
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from repository import LayerOutput, LayerOutputs

from .measure import make_session
from .onnx_export import INPUT_NAME, ExportError, ExportOptions

__all__ = ["LAYER_INPUTS", "block_names", "record_layer_outputs"]

# Real inputs the check runs, one at a time (a ResNet-152 at 224x224 has ~100 MB of outputs per input).
LAYER_INPUTS = 4
_SCOPES_KEY = "pkg.torch.onnx.name_scopes"
# The exported graph wraps the network in export.onnx_export.ServingModel, attribute "network".
_PREFIX = "network."
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass
class _Call:
    """One forward call of a module, as the hooks saw it."""

    name: str
    call: int
    type: str
    shape: tuple[int, ...]
    block: bool
    conv: bool
    source: str | None  # label of the call whose output is this call's input (None: not a recorded layer's)

    @property
    def label(self) -> str:
        return self.name if self.call == 1 else f"{self.name}#{self.call}"

    @property
    def promised(self) -> bool:
        """What the views rely on: every convolution, and every block with a (C, H, W) output."""
        return self.conv or (self.block and len(self.shape) == 3)


@dataclass
class _Located:
    tensor: str
    holds: str | None = None  # the label of the call whose output the tensor holds, when not this one's
    weight: str | None = None


@dataclass
class _Graph:
    """The exported graph, indexed by module scope."""

    scopes: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    node_scopes: list[frozenset[str]] = field(default_factory=list)
    outputs: list[list[str]] = field(default_factory=list)
    consumers: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    graph_outputs: set[str] = field(default_factory=set)
    shapes: dict[str, tuple[int, ...] | None] = field(default_factory=dict)
    convs: dict[str, int] = field(default_factory=dict)  # weight initializer -> Conv node
    innermost: list[str | None] = field(default_factory=list)


def block_names(net: nn.Module) -> set[str]:
    """The outermost modules that are not containers: a network's blocks (resnet ``layer1.0``, vgg ``features.3``)."""
    out: set[str] = set()

    def visit(module: nn.Module, prefix: str) -> None:
        for name, child in module.named_children():
            path = f"{prefix}{name}"
            if isinstance(child, _CONTAINERS):
                visit(child, f"{path}.")
            else:
                out.add(path)

    visit(net, "")
    return out


def record_layer_outputs(
    net: nn.Module,
    path: str | os.PathLike[str],
    input_shape: Sequence[int],
    real_inputs: np.ndarray | None = None,
    *,
    options: ExportOptions = ExportOptions(),
    folded: dict[str, Any] | None = None,
    threads: int | None = None,
) -> LayerOutputs:
    """The :class:`LayerOutputs` of the ONNX file ``path``, exported from ``net`` (the unfolded serving copy).

    The first :data:`LAYER_INPUTS` of ``real_inputs`` feed the check (standard-normal noise when
    there are none); ``folded`` is the file's ``folded_pooling`` metadata. Raises
    :class:`ExportError` when a promised layer (see the module docstring) is missing or differs.
    """
    kind = "real" if real_inputs is not None and len(real_inputs) else "random"
    if real_inputs is None or not len(real_inputs):
        real_inputs = np.random.default_rng(options.seed).standard_normal((LAYER_INPUTS, *input_shape), np.float32)
    inputs = np.ascontiguousarray(real_inputs[:LAYER_INPUTS], dtype=np.float32)
    proto = onnx.load_model(os.fspath(path))
    calls = _trace(net, torch.from_numpy(inputs[:1]))
    graph = _index(proto)
    located, left_out = _locate(calls, graph, folded)
    stats = _compare(net, proto, located, inputs, threads)
    layers = []
    for call in calls:
        if call.label in located:
            judged = _judge(call, located[call.label], stats.get(call.label), options)
            if isinstance(judged, str):
                left_out[call.label] = judged
            else:
                layers.append(judged)
    return LayerOutputs(
        file=Path(path).name,
        kind=kind,  # type: ignore[arg-type]
        inputs=len(inputs),
        atol=options.atol,
        rtol=options.rtol,
        layers=layers,
        left_out=left_out,
    )


def _judge(
    call: _Call, where: _Located, stats: tuple[float, float] | None, options: ExportOptions
) -> LayerOutput | str:
    """The layer's record, or why it is left out; raises :class:`ExportError` for a promised layer that differs."""
    diff, largest = stats if stats is not None else (float("inf"), 0.0)
    tolerance = max(options.atol, options.rtol * largest)
    if stats is None or not diff <= tolerance:
        why = (
            f"ONNX Runtime's {where.tensor!r} differs from PyTorch by {diff:.3g} (bound {tolerance:.3g})"
            if stats is not None
            else f"{where.holds or call.label} never ran in PyTorch: {where.tensor!r} was not compared"
        )
        if call.promised:
            raise ExportError(f"layer {call.label} ({call.type}): {why}; the layer map is wrong, nothing published")
        return why
    return LayerOutput(
        name=call.label,
        type=call.type,
        tensor=where.tensor,
        shape=list(call.shape),
        block=call.block,
        holds=where.holds,
        weight=where.weight,
        max_abs_diff=float(diff),
        tolerance=float(tolerance),
    )


# --- pass 1: what the network calls, in order --------------------------------------------------


def _key(t: Tensor) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    # The same storage seen through the same view: how an identity module's input is recognised.
    return t.data_ptr(), tuple(t.shape), tuple(t.stride())


@contextmanager
def _hooks(net: nn.Module, hook: Any) -> Iterator[None]:
    """``hook(name, count, module, input, output)`` after every call of every named module with a tensor output."""
    counts: Counter[str] = Counter()
    handles = []
    for name, module in net.named_modules():
        if not name:
            continue

        def fire(mod: nn.Module, args: tuple, out: Any, name: str = name) -> None:
            if isinstance(out, Tensor):
                counts[name] += 1
                x = next((a for a in args if isinstance(a, Tensor)), None)
                hook(name, counts[name], mod, x, out)

        handles.append(module.register_forward_hook(fire))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _trace(net: nn.Module, x: Tensor) -> list[_Call]:
    """Every module call in the order the calls end (a block after its layers), with its input's producer."""
    blocks = block_names(net)
    calls: list[_Call] = []
    producers: dict[tuple[int, tuple[int, ...], tuple[int, ...]], str] = {_key(x): INPUT_NAME}
    kept: list[Tensor] = []  # alive until the end, so that no storage is reused under another layer's name

    def hook(name: str, count: int, mod: nn.Module, inp: Tensor | None, out: Tensor) -> None:
        call = _Call(
            name=name,
            call=count,
            type=type(mod).__name__,
            shape=tuple(out.shape[1:]),
            block=name in blocks,
            conv=isinstance(mod, nn.Conv2d),
            source=producers.get(_key(inp)) if inp is not None else None,
        )
        calls.append(call)
        producers[_key(out)] = call.label
        kept.append(out)

    with _hooks(net, hook), torch.no_grad():
        net(x)
    return calls


# --- the graph ---------------------------------------------------------------------------------


def _index(proto: onnx.ModelProto) -> _Graph:
    inferred = onnx.shape_inference.infer_shapes(proto)
    graph = _Graph(graph_outputs={o.name for o in proto.graph.output})
    for value in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]:
        dims = value.type.tensor_type.shape.dim
        graph.shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
    for i, node in enumerate(proto.graph.node):
        meta = {p.key: p.value for p in node.metadata_props}
        path = ast.literal_eval(meta[_SCOPES_KEY]) if _SCOPES_KEY in meta else []
        # [root, module, ..., innermost module, fx node]: the modules, without the serving wrapper's prefix.
        modules = [p.removeprefix(_PREFIX) for p in path[:-1] if p.startswith(_PREFIX)]
        graph.node_scopes.append(frozenset(modules))
        graph.innermost.append(modules[-1] if modules else None)
        graph.outputs.append(list(node.output))
        for module in modules:
            graph.scopes[module].append(i)
        for value in node.input:
            graph.consumers[value].append(i)
        if node.op_type == "Conv" and len(node.input) > 1:
            graph.convs[node.input[1]] = i
    return graph


def _exits(graph: _Graph, scope: str, shape: tuple[int, ...]) -> list[str]:
    """Values made inside ``scope`` and used outside it (or returned), of the per-input ``shape``, in order."""
    out = []
    for i in graph.scopes.get(scope, []):
        for value in graph.outputs[i]:
            outside = (scope not in graph.node_scopes[j] for j in graph.consumers[value])
            dims = graph.shapes.get(value)
            if (value in graph.graph_outputs or any(outside)) and (dims is None or dims[1:] == shape):
                out.append(value)
    return out


def _locate(
    calls: Sequence[_Call], graph: _Graph, folded: dict[str, Any] | None
) -> tuple[dict[str, _Located], dict[str, str]]:
    """Each call's tensor, or why it has none; raises :class:`ExportError` for a promised layer without one."""
    # A module called several times (a shared ReLU): its k-th call of a given shape takes the k-th exit of that shape.
    siblings: dict[tuple[str, tuple[int, ...]], list[int]] = defaultdict(list)
    for call in calls:
        siblings[call.name, call.shape].append(call.call)
    located: dict[str, _Located] = {}
    left_out: dict[str, str] = {}
    for call in calls:
        same = siblings[call.name, call.shape]
        where, why = _locate_one(call, same.index(call.call), len(same), graph, located)
        if where is not None:
            located[call.label] = where
            continue
        if folded and call.name in ("avgpool", "flatten"):
            why = f"folded at export: the pooling only replicated a 1x1 map, now summed into {folded['layer']}"
        elif call.promised:
            raise ExportError(f"layer {call.label} ({call.type}): {why}; nothing published")
        left_out[call.label] = why
    return located, left_out


def _locate_one(
    call: _Call, index: int, count: int, graph: _Graph, located: dict[str, _Located]
) -> tuple[_Located | None, str]:
    """``index``: this call among the ``count`` calls of its module with its output shape."""
    weight = f"{_PREFIX}{call.name}.weight"
    if call.conv and weight in graph.convs:
        node = graph.convs[weight]
        owner = graph.innermost[node]
        return _Located(graph.outputs[node][0], None if owner in (None, call.name) else owner, weight), ""
    if call.name in graph.scopes:
        exits = _exits(graph, call.name, call.shape)
        if len(exits) == count:
            return _Located(exits[index]), ""
        if count == 1 and exits:
            return _Located(exits[-1]), ""
        return None, f"{len(exits)} values of shape {list(call.shape)} leave its nodes for {count} call(s)"
    source = _Located(INPUT_NAME) if call.source == INPUT_NAME else located.get(call.source or "")
    if source is not None and _shape_of(call.source, graph, located) in (None, call.shape):
        return _Located(source.tensor, source.holds), ""
    return None, "no node of its own in the served graph (an identity in eval mode) and its input is no layer's output"


def _shape_of(label: str | None, graph: _Graph, located: dict[str, _Located]) -> tuple[int, ...] | None:
    tensor = INPUT_NAME if label == INPUT_NAME else located[label].tensor if label in located else None
    dims = graph.shapes.get(tensor) if tensor is not None else None
    return dims[1:] if dims is not None else None


# --- pass 2: ONNX Runtime against the hooks ------------------------------------------------------


def _compare(
    net: nn.Module,
    proto: onnx.ModelProto,
    located: dict[str, _Located],
    inputs: np.ndarray,
    threads: int | None,
) -> dict[str, tuple[float, float]]:
    """Per located call: the largest |ONNX - PyTorch| over ``inputs`` and the largest |PyTorch| (for the bound)."""
    tensors = sorted({w.tensor for w in located.values()} - {INPUT_NAME})
    session = make_session(_with_outputs(proto, tensors).SerializeToString(), threads)
    # A call is compared through the call whose output its tensor holds (a folded batch norm's).
    wanted: dict[str, list[str]] = defaultdict(list)
    for label, where in located.items():
        wanted[where.holds or label].append(label)
    stats: dict[str, tuple[float, float]] = {}  # a call that is never compared stays out: it is not verified
    values: dict[str, np.ndarray] = {}

    def hook(name: str, count: int, mod: nn.Module, inp: Tensor | None, out: Tensor) -> None:
        reference = out.detach().float().numpy()
        largest = float(np.max(np.abs(reference)))
        for each in wanted.get(name if count == 1 else f"{name}#{count}", ()):
            got = values[located[each].tensor]
            diff = float(np.max(np.abs(got - reference))) if got.shape == reference.shape else float("inf")
            before = stats.get(each, (0.0, 0.0))
            stats[each] = (max(before[0], diff), max(before[1], largest))

    for x in inputs:
        batch = x[None]
        values.clear()
        values.update(zip(tensors, session.run(tensors, {INPUT_NAME: batch}), strict=True))
        values[INPUT_NAME] = batch
        with _hooks(net, hook), torch.no_grad():  # hooks per forward: they count each module's calls
            net(torch.from_numpy(batch))
    return stats


def _with_outputs(proto: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    present = {o.name for o in copy.graph.output}
    copy.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in present)
    return copy
