"""PyTorch -> ONNX: the served graph, the metadata that describes it, its signature and ``onnx.checker``.

The exported graph takes one float32 NCHW tensor ``input`` with a dynamic batch dimension
and returns ``logits`` and ``probabilities`` (the softmax is part of the graph, so a client
needs no post-processing). We use the dynamo exporter (``torch.export`` + onnxscript): in
torch 2.13 it gives a clean opset-18 graph for every family of the zoo (BatchNorm folded,
SiLU, squeeze-excitation, adaptive pooling at the served size), where the TorchScript exporter
cannot export adaptive pooling with a dynamic batch at all.

Before export, :func:`fold_replicated_pooling` rewrites one thing PyTorch leaves alone: at the
small resolutions the digits are served at, AlexNet's and VGG's feature maps are 1x1, and their
adaptive average pool only copies each value into a 6x6 or 7x7 grid for the first fully connected
layer, which then reads 36 or 49 weights per copy. Summing those weights gives the same layer on
the 1x1 map with 36-49x fewer weights (VGG-16: 102.8M -> 2.1M): at batch 1 those layers are bound
by memory bandwidth, so the served model runs several times faster. The parity check compares
the folded graph with the unchanged network.

The file also describes itself: name, version, labels and the input spec go into the ONNX
metadata (``metadata_props``), so a lone ``.onnx`` file is enough to use the model.

:func:`check_onnx` runs ``onnx.checker`` on the file; :mod:`export.measure` runs it through ONNX
Runtime (parity with PyTorch, accuracy, latency).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import Tensor, nn

from repository import TensorSpec

__all__ = [
    "EXPORT_REVISION",
    "INPUT_NAME",
    "METADATA_PREFIX",
    "OUTPUT_NAMES",
    "ExportError",
    "ExportOptions",
    "ServingModel",
    "check_onnx",
    "export_onnx",
    "fold_replicated_pooling",
    "graph_signature",
    "read_metadata",
    "serving_copy",
    "write_metadata",
]

log = logging.getLogger(__name__)

INPUT_NAME = "input"
OUTPUT_NAMES = ("logits", "probabilities")
BATCH_DIM = "batch"
METADATA_PREFIX = "cnnserve."
# Bump when export_onnx writes a different graph for the same network (caches key on it).
EXPORT_REVISION = 2
_ONNX_DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16"}


class ExportError(RuntimeError):
    """Export or verification failed; the message says what differed and what to try."""


@dataclass(frozen=True)
class ExportOptions:
    """How a network is exported and checked. Recorded in the card: a change means a rebuild.

    ``atol`` bounds the largest |logit difference| between ONNX Runtime and PyTorch (float32).
    Rounding grows with the logits and with depth (one ulp at 1,024 is 1.2e-4; EfficientNet-B0
    fed standard-normal noise reaches logits of 1,400 and differences of 3e-3, 26 ulps there), so
    the bound is ``max(atol, rtol * max|logit|)``: 1e-4 up to |logit| = ``atol / rtol`` (10),
    ten parts in a million of the largest logit above.
    ``random_inputs`` and ``real_inputs`` are how many of each the parity check feeds, in
    batches of ``parity_batch_sizes`` (1 and a larger one exercise the dynamic batch).
    """

    opset: int = 18
    atol: float = 1e-4
    rtol: float = 1e-5
    random_inputs: int = 16
    real_inputs: int = 64
    parity_batch_sizes: tuple[int, ...] = (1, 8)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.opset < 17:
            raise ValueError(f"opset must be >= 17 (the served graphs need it), got {self.opset}")
        if self.atol <= 0 or self.rtol < 0:
            raise ValueError(f"atol must be > 0 and rtol >= 0, got atol={self.atol}, rtol={self.rtol}")
        if not self.parity_batch_sizes or min(self.parity_batch_sizes) < 1:
            raise ValueError(f"parity_batch_sizes must be >= 1, got {self.parity_batch_sizes}")
        object.__setattr__(self, "parity_batch_sizes", tuple(int(b) for b in self.parity_batch_sizes))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["parity_batch_sizes"] = list(self.parity_batch_sizes)
        return data


class ServingModel(nn.Module):
    """``network(x)`` -> (logits, softmax(logits)); ``half`` runs the network in float16 between float32 casts."""

    def __init__(self, network: nn.Module, half: bool = False) -> None:
        super().__init__()
        self.network = network.half() if half else network
        self.half = half

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.network(x.half() if self.half else x)
        if self.half:
            # The softmax in float32: a float16 exp of large logits overflows to inf.
            logits = logits.float()
        return logits, torch.softmax(logits, dim=1)


def serving_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` as served: GoogLeNet's auxiliary classifiers dropped."""
    net = copy.deepcopy(model).cpu().float().eval()
    drop_aux = getattr(net, "drop_aux", None)
    if callable(drop_aux):
        drop_aux()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def fold_replicated_pooling(net: nn.Module, input_shape: Sequence[int]) -> dict[str, Any] | None:
    """Fold an adaptive average pool that only replicates a 1x1 map into the linear layer after it.

    Applies to networks with ``avgpool`` (:class:`nn.AdaptiveAvgPool2d`), ``flatten`` and a
    ``classifier`` whose first :class:`nn.Linear` follows nothing but dropout (AlexNet, ZFNet, VGG)
    when ``forward_features`` gives a 1x1 map at ``input_shape``. ``net`` is changed in place (the
    pool becomes an identity, the linear layer takes the channels); returns what was folded, or
    ``None`` when nothing applies (at 224x224, for instance).
    """
    pool, classifier = getattr(net, "avgpool", None), getattr(net, "classifier", None)
    if not isinstance(pool, nn.AdaptiveAvgPool2d) or not isinstance(classifier, nn.Sequential):
        return None
    index = next((i for i, m in enumerate(classifier) if not isinstance(m, nn.Dropout)), None)
    linear = classifier[index] if index is not None else None
    if not isinstance(linear, nn.Linear) or not isinstance(getattr(net, "flatten", None), nn.Flatten):
        return None
    with torch.no_grad():
        channels, height, width = net.forward_features(torch.zeros(1, *input_shape)).shape[1:]
    grid = pool.output_size if isinstance(pool.output_size, tuple) else (pool.output_size, pool.output_size)
    if (height, width) != (1, 1) or None in grid or linear.in_features != channels * grid[0] * grid[1]:
        return None
    folded = nn.Linear(channels, linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        # flatten order is (channel, row, column): every copy of channel c meets its own weights.
        weight = linear.weight.double().view(linear.out_features, channels, grid[0] * grid[1]).sum(-1)
        folded.weight.copy_(weight.to(linear.weight.dtype))
        if linear.bias is not None:
            folded.bias.copy_(linear.bias)
    classifier[index] = folded
    net.avgpool = nn.Identity()
    return {
        "layer": f"classifier.{index}",
        "grid": list(grid),
        "weights_before": linear.weight.numel(),
        "weights_after": folded.weight.numel(),
    }


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    input_shape: Sequence[int],
    *,
    metadata: Mapping[str, Any] | None = None,
    options: ExportOptions = ExportOptions(),
    half: bool = False,
) -> Path:
    """Export ``model`` (served as by :func:`serving_copy`) for (N, *input_shape) float32 inputs.

    ``half`` exports a float16 network with float32 input and outputs (Cast nodes at both ends).
    ``metadata`` goes into the file's ``metadata_props`` (see :func:`write_metadata`).
    """
    path = Path(path)
    shape = tuple(int(d) for d in input_shape)
    network = serving_copy(model)
    folded = fold_replicated_pooling(network, shape)
    if folded:
        log.debug("folded the replicated pooling into %s", folded["layer"])
    net = ServingModel(network, half=half).eval()
    example = torch.zeros(2, *shape)
    batch = torch.export.Dim(BATCH_DIM, min=1, max=4096)
    log.debug("exporting %s for input (N, %s)%s", type(model).__name__, shape, " in float16" if half else "")
    with _quiet_exporter():
        try:
            program = torch.onnx.export(
                net,
                (example,),
                None,
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                opset_version=options.opset,
                dynamic_shapes=({0: batch},),
                optimize=True,
                verbose=False,
            )
        except Exception as err:  # the exporter raises many types; they all mean the same to the caller
            raise ExportError(
                f"torch.onnx.export failed for {type(model).__name__} at input {shape}: {type(err).__name__}: {err}; "
                "check that the network runs on a (2, *input_shape) tensor in eval mode"
            ) from err
    proto = program.model_proto
    proto.producer_name = "cnnserve"
    _set_metadata(proto, {**(metadata or {}), **({"folded_pooling": folded} if folded else {})})
    _save(proto, path)
    return path


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's own progress and warnings (``torchvision is not installed``, pass logs).

    With this module's logger at DEBUG they are left alone.
    """
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation chatter, not ours to fix
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _save(proto: onnx.ModelProto, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    onnx.save_model(proto, tmp)
    os.replace(tmp, path)


def _encode(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _set_metadata(proto: onnx.ModelProto, metadata: Mapping[str, Any]) -> None:
    keep = {p.key: p.value for p in proto.metadata_props if not p.key.startswith(METADATA_PREFIX)}
    keep.update({METADATA_PREFIX + key: _encode(value) for key, value in metadata.items()})
    del proto.metadata_props[:]
    for key, value in sorted(keep.items()):
        proto.metadata_props.add(key=key, value=value)
    version = metadata.get("version")
    if isinstance(version, int):
        proto.model_version = version
    if "description" in metadata:
        proto.doc_string = str(metadata["description"])


def write_metadata(path: str | os.PathLike[str], metadata: Mapping[str, Any]) -> None:
    """Replace the ``cnnserve.*`` metadata of an ONNX file (values that are not strings become JSON)."""
    proto = onnx.load_model(os.fspath(path))
    _set_metadata(proto, metadata)
    _save(proto, Path(path))


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``cnnserve.*`` metadata of an ONNX file, JSON values decoded, without loading the weights."""
    proto = onnx.load_model(os.fspath(path), load_external_data=False)
    out: dict[str, Any] = {}
    for prop in proto.metadata_props:
        if prop.key.startswith(METADATA_PREFIX):
            try:
                out[prop.key[len(METADATA_PREFIX) :]] = json.loads(prop.value)
            except json.JSONDecodeError:
                out[prop.key[len(METADATA_PREFIX) :]] = prop.value
    return out


def graph_signature(
    path_or_proto: str | os.PathLike[str] | onnx.ModelProto,
) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The graph's inputs and outputs as :class:`TensorSpec` records (-1 for a symbolic dimension)."""
    proto = (
        path_or_proto
        if isinstance(path_or_proto, onnx.ModelProto)
        else onnx.load_model(os.fspath(path_or_proto), load_external_data=False)
    )
    initializers = {i.name for i in proto.graph.initializer}

    def spec(value: onnx.ValueInfoProto) -> TensorSpec:
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        return TensorSpec(name=value.name, dtype=_ONNX_DTYPES.get(tensor.elem_type, str(tensor.elem_type)), shape=dims)

    inputs = [spec(v) for v in proto.graph.input if v.name not in initializers]
    return inputs, [spec(v) for v in proto.graph.output]


def check_onnx(path: str | os.PathLike[str]) -> None:
    """``onnx.checker`` with ``full_check`` (types and shapes inferred); raises :class:`ExportError`."""
    try:
        onnx.checker.check_model(os.fspath(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise ExportError(f"{path} is not a valid ONNX model: {err}") from err
