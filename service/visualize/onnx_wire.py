"""Just enough of the ONNX file format for the views, without the ``onnx`` package.

An ONNX file is one protobuf message (``ModelProto``). The views need two things from it:
the graph with some intermediate tensors declared as outputs (so that ONNX Runtime returns them)
and one weight tensor (an initializer). Both are a few fields of protobuf's wire format, read and
written here; the ``onnx`` package would add 55 MB (with ``ml_dtypes``) to the runtime image for
the same. Appending to a repeated field is a valid protobuf edit (repeated fields concatenate), and
an output declared with its name alone is how ONNX Runtime users expose intermediate tensors.

Field numbers are onnx.proto3's: ``ModelProto.graph`` 7; ``GraphProto.initializer`` 5, ``output``
12; ``ValueInfoProto.name`` 1; ``TensorProto.dims`` 1, ``data_type`` 2, ``float_data`` 4, ``name``
8, ``raw_data`` 9, ``data_location`` 14.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["OnnxFormatError", "read_initializer", "with_outputs"]

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER, _GRAPH_OUTPUT = 5, 12
_VALUE_INFO_NAME = 1
_TENSOR_DIMS, _TENSOR_TYPE, _TENSOR_FLOATS, _TENSOR_NAME, _TENSOR_RAW, _TENSOR_LOCATION = 1, 2, 4, 8, 9, 14
_DTYPES = {1: np.dtype("<f4"), 10: np.dtype("<f2"), 11: np.dtype("<f8")}


class OnnxFormatError(ValueError):
    """The bytes are not the ONNX model (or the tensor) the views expect."""


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise OnnxFormatError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _fields(data: memoryview) -> Iterator[tuple[int, int, int | memoryview, int]]:
    """(field number, wire type, value, end offset) of each field of one message; LEN values as memoryviews."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | memoryview
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        elif wire == _LEN:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise OnnxFormatError(f"field {number} runs past the end of its message")
            value, pos = data[pos : pos + size], pos + size
        elif wire in (_FIXED64, _FIXED32):
            width = 8 if wire == _FIXED64 else 4
            value, pos = int.from_bytes(data[pos : pos + width], "little"), pos + width
        else:
            raise OnnxFormatError(f"unsupported wire type {wire} (field {number})")
        yield number, wire, value, pos


def _len_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | _LEN) + _encode_varint(len(payload)) + payload


def _graph(model: memoryview) -> tuple[memoryview, int, int]:
    """The graph's bytes and where its field starts and ends in ``model``."""
    start = 0
    for number, wire, value, end in _fields(model):
        if number == _MODEL_GRAPH and wire == _LEN:
            assert isinstance(value, memoryview)
            return value, start, end
        start = end
    raise OnnxFormatError("no graph in the model")


def with_outputs(model: bytes, names: Sequence[str]) -> bytes:
    """``model`` with ``names`` (values of its graph) declared as extra graph outputs."""
    view = memoryview(model)
    graph, start, end = _graph(view)
    extra = b"".join(_len_field(_GRAPH_OUTPUT, _len_field(_VALUE_INFO_NAME, n.encode())) for n in names)
    return bytes(view[:start]) + _len_field(_MODEL_GRAPH, bytes(graph) + extra) + bytes(view[end:])


def read_initializer(model: bytes | memoryview, name: str) -> np.ndarray:
    """The initializer ``name`` of ``model``'s graph as a numpy array (float32, float16 or float64)."""
    graph, _, _ = _graph(memoryview(model))
    for number, wire, value, _ in _fields(graph):
        if number == _GRAPH_INITIALIZER and wire == _LEN:
            assert isinstance(value, memoryview)
            tensor = _tensor_if_named(value, name.encode())
            if tensor is not None:
                return tensor
    raise OnnxFormatError(f"the graph has no initializer {name!r}")


def _tensor_if_named(message: memoryview, name: bytes) -> np.ndarray | None:
    dims: list[int] = []
    dtype, raw, floats, found = 1, None, None, False
    for number, wire, value, _ in _fields(message):
        if number == _TENSOR_NAME:
            if bytes(value) != name:  # type: ignore[arg-type]
                return None
            found = True
        elif number == _TENSOR_DIMS:
            dims += _packed_varints(value) if wire == _LEN else [value]  # type: ignore[list-item,arg-type]
        elif number == _TENSOR_TYPE:
            dtype = value  # type: ignore[assignment]
        elif number == _TENSOR_RAW:
            raw = value
        elif number == _TENSOR_FLOATS and wire == _LEN:
            floats = value
        elif number == _TENSOR_LOCATION and value == 1:
            raise OnnxFormatError(f"initializer {name.decode()!r} is stored outside the file (external data)")
    if not found:
        return None
    if dtype not in _DTYPES:
        raise OnnxFormatError(f"initializer {name.decode()!r} has data type {dtype}, not a float type")
    data = raw if raw is not None else floats
    array = np.frombuffer(data if data is not None else b"", dtype=_DTYPES[dtype] if raw is not None else "<f4")
    if array.size != int(np.prod(dims)):
        raise OnnxFormatError(f"initializer {name.decode()!r} holds {array.size} values for dims {dims}")
    return array.astype(np.float32).reshape(dims)


def _packed_varints(data: memoryview) -> list[int]:
    out, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos)
        out.append(value)
    return out
