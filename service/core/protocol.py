"""What the Open Inference Protocol (v2) means, whichever binding carries it (REST or gRPC).

Both front ends read a request into the same terms and write the same answers:

* datatypes: :data:`NUMPY_DTYPES` (little-endian, as the protocol's raw tensor bytes are);
* an input's shape checked before any array is made (:func:`element_count`);
* a model's version (:func:`version_number`) and the request parameter ``variant`` (:func:`variant`);
* a model's metadata and Triton-style configuration (:func:`model_metadata`, :func:`model_config`);
* the outputs asked for, each with ``binary_data`` and ``classification`` (:class:`RequestedOutput`,
  :func:`requested_outputs`): a classification answers, instead of the tensor, a BYTES tensor
  [batch, k] of ``"<value>:<index>:<label>"`` (:func:`classify`), whose raw bytes are
  length-prefixed strings (:func:`bytes_tensor`).

:mod:`service.http.v2_codec` and :mod:`service.grpc.codec` turn their wire formats into these.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dataplane import V2_DATATYPES, top_k
from .errors import InvalidInput, ModelNotReady, VersionNotFound
from .model_manager import ModelState, Servable

__all__ = [
    "EXTENSIONS",
    "NUMPY_DTYPES",
    "PLATFORM",
    "V2_BY_DTYPE",
    "VARIANTS",
    "RequestedOutput",
    "bytes_tensor",
    "classify",
    "element_count",
    "model_config",
    "model_metadata",
    "numpy_dtype",
    "requested_outputs",
    "shape_text",
    "variant",
    "version_number",
]

EXTENSIONS = ["binary_tensor_data", "classification", "model_repository"]
PLATFORM = "onnxruntime_onnx"

NUMPY_DTYPES = {v2: np.dtype(name).newbyteorder("<") for name, v2 in V2_DATATYPES.items()}
V2_BY_DTYPE = {np.dtype(name): v2 for name, v2 in V2_DATATYPES.items()}  # a dtype's .name is slow to compute
VARIANTS = ("fp32", "int8", "fp16")
MAX_ELEMENTS = 2**31
MAX_DIMS = 32  # numpy 1.x's limit (2.x allows 64); the models take 4


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    name: str
    binary: bool
    classification: int = 0


def numpy_dtype(name: str, datatype: str) -> np.dtype:
    """The numpy dtype of input ``name``'s protocol ``datatype``; 422 for one this server does not take."""
    dtype = NUMPY_DTYPES.get(datatype.upper())
    if dtype is None:
        raise InvalidInput(f"input {name!r}: datatype {datatype!r} is not supported here; the model takes FP32")
    return dtype


def element_count(name: str, shape: Sequence[int]) -> int:
    """The number of values of input ``name`` shaped ``shape``; 422 for a negative or too large a shape."""
    if any(d < 0 for d in shape):
        raise InvalidInput(f"input {name!r}: shape {shape_text(shape)} has a negative dimension")
    count = math.prod(shape)
    # Each dimension too: a zero elsewhere makes the count small, and numpy cannot make such a shape.
    if len(shape) > MAX_DIMS or count > MAX_ELEMENTS or any(d > MAX_ELEMENTS for d in shape):
        raise InvalidInput(
            f"input {name!r}: shape {shape_text(shape)} is too large "
            f"(at most {MAX_DIMS} dimensions and {MAX_ELEMENTS:,} values)"
        )
    return count


def shape_text(shape: Sequence[int]) -> str:
    text = str(list(shape))
    return text if len(text) <= 80 else text[:77] + "..."


def variant(parameters: Mapping[str, Any]) -> str | None:
    """The request parameter ``variant`` (fp32, int8 or fp16), or None when not given; 422 for another."""
    value = parameters.get("variant")
    if value is not None and value not in VARIANTS:
        raise InvalidInput(f"parameter 'variant' must be one of {', '.join(VARIANTS)}, got {value!r}")
    return value


def requested_outputs(
    requested: Iterable[tuple[str, Mapping[str, Any]]], model_outputs: Sequence[str], binary_default: bool
) -> list[RequestedOutput]:
    """The outputs asked for, as ``(name, parameters)`` pairs (none: every output of the model)."""
    wanted = []
    for name, params in requested:
        if name not in model_outputs:
            raise InvalidInput(f"the model has no output {name!r}; outputs: {', '.join(model_outputs)}")
        if any(key.startswith("shared_memory") for key in params):
            raise InvalidInput("shared-memory outputs are not supported by this server")
        classification = params.get("classification", 0)
        if not isinstance(classification, int) or isinstance(classification, bool) or classification < 0:
            raise InvalidInput(f"output {name!r}: classification must be a count >= 0, got {classification!r}")
        wanted.append(RequestedOutput(name, bool(params.get("binary_data", binary_default)), classification))
    return wanted or [RequestedOutput(name, binary_default) for name in model_outputs]


def classify(values: np.ndarray, k: int, labels: Sequence[str]) -> np.ndarray:
    """The classification extension's answer: [batch, k] strings ``"<value>:<index>:<label>"``, largest first."""
    indices, scores = top_k(values.reshape(values.shape[0], -1), k)
    return np.array(
        [
            [f"{s:f}:{i}:{labels[i]}" if i < len(labels) else f"{s:f}:{i}" for i, s in zip(ri, rs, strict=True)]
            for ri, rs in zip(indices.tolist(), scores.tolist(), strict=True)
        ],
        dtype=object,
    )


def bytes_tensor(array: np.ndarray) -> bytes:
    """A BYTES tensor's raw form: each element's UTF-8 bytes after their length (4 bytes, little-endian)."""
    parts = []
    for item in array.ravel():
        raw = item.encode()
        parts.append(struct.pack("<I", len(raw)))
        parts.append(raw)
    return b"".join(parts)


def version_number(model: ModelState, version: str | None) -> int | None:
    """The version named by ``version`` (None or empty: the latest); 404 for text that names no version."""
    if not version:
        return None
    # ASCII digits, and not too many: str.isdigit also accepts "²" (which int() refuses) and "١" (which
    # it reads as 1), and int() refuses more than 4,300 digits. No version number has 19 digits.
    if not (version.isascii() and version.isdigit()) or len(version) > 18:
        raise VersionNotFound(f"model {model.name!r} has no version {version[:40]!r}")
    return int(version)


def _tensor(spec: Any) -> dict[str, Any]:
    return {"name": spec.name, "datatype": V2_DATATYPES.get(spec.dtype, spec.dtype.upper()), "shape": list(spec.shape)}


def model_metadata(model: ModelState, version: str | None) -> dict[str, Any]:
    """The protocol's model metadata (name, versions, platform, inputs, outputs); 404/503 for a version not served."""
    number = version_number(model, version)
    if model.card is None:
        raise ModelNotReady(f"model {model.name!r} is unavailable: {model.reason}")
    if number is not None:
        model.servable(number)
    versions = [str(number)] if number is not None else [str(v) for v in sorted(model.versions)]
    card = model.card
    return {
        "name": model.name,
        "versions": versions,
        "platform": PLATFORM,
        "inputs": [_tensor(t) for t in card.inputs],
        "outputs": [_tensor(t) for t in card.outputs],
    }


def model_config(servable: Servable, version_policy: str) -> dict[str, Any]:
    """Triton's model configuration of what ``servable`` serves, as the JSON form of its ``ModelConfig``."""
    card, batching = servable.card, servable.batcher.config

    def tensor(spec: Any) -> dict[str, Any]:
        return {"name": spec.name, "data_type": "TYPE_" + V2_DATATYPES.get(spec.dtype, "FP32"), "dims": spec.shape[1:]}

    return {
        "name": card.name,
        "platform": PLATFORM,
        "backend": "onnxruntime",
        "max_batch_size": batching.max_batch_size,
        "input": [tensor(t) for t in card.inputs],
        "output": [tensor(t) for t in card.outputs],
        "dynamic_batching": {
            "max_queue_delay_microseconds": batching.max_queue_delay_microseconds,
            "default_queue_policy": {"max_queue_size": batching.max_queue_size},
        },
        "version_policy": {"latest": {"num_versions": 1}} if version_policy == "latest" else {"all": {}},
    }
