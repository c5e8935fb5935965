"""Open Inference Protocol (v2) infer requests and responses, with Triton's extensions.

* Binary tensor data: the JSON header is followed by raw little-endian tensor bytes; its length
  is in ``Inference-Header-Content-Length`` and each binary tensor carries
  ``parameters.binary_data_size``. Outputs come back binary when asked (``binary_data`` per
  output, ``binary_data_output`` for all), with the same header on the response.
* Classification: ``parameters.classification = k`` on an output returns, instead of the
  tensor, a BYTES tensor [batch, k] of ``"<value>:<index>:<label>"``.
* ``Content-Encoding: gzip`` / ``deflate`` request bodies (``tritonclient``'s
  ``request_compression_algorithm``), decompressed up to the body limit.

Tensor data becomes numpy arrays in one call each (``np.frombuffer`` for binary data, no copy;
``np.asarray`` for JSON lists), never element by element.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError

from .dataplane import V2_DATATYPES, json_array, top_k
from .errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from .v2_schemas import V2InferenceRequest, V2InferenceResponse, V2RequestInput, V2ResponseOutput

__all__ = ["HEADER_LENGTH", "RequestedOutput", "V2Request", "decode_infer", "encode_infer", "inflate"]

HEADER_LENGTH = "Inference-Header-Content-Length"

_NUMPY = {v2: np.dtype(name).newbyteorder("<") for name, v2 in V2_DATATYPES.items()}
_MAX_ELEMENTS = 2**31
_MAX_DIMS = 32  # numpy 1.x's limit (2.x allows 64); the models take 4
_VARIANTS = ("fp32", "int8", "fp16")


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    name: str
    binary: bool
    classification: int = 0


@dataclass(frozen=True, slots=True)
class V2Request:
    id: str | None
    inputs: list[tuple[str, np.ndarray]]
    outputs: list[RequestedOutput]
    variant: str | None = None  # request parameter "variant": fp32 (default), int8 or fp16


def inflate(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body, decompressed per ``Content-Encoding`` but never beyond ``limit`` bytes."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported (gzip, deflate)")
    inflater = zlib.decompressobj(wbits=(16 if encoding == "gzip" else 0) + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"the {encoding} body cannot be decompressed: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"the decompressed body exceeds {limit:,} bytes")
    return out


def decode_infer(body: bytes, header_length: str | None, model_outputs: Sequence[str]) -> V2Request:
    """Parse an infer request; 422 naming what is wrong (never an exception from numpy)."""
    header, binary = _split_body(body, header_length)
    request = _parse_header(header)
    inputs = []
    offset = 0
    for item in request.inputs:
        array, offset = _decode_input(item, binary, offset)
        inputs.append((item.name, array))
    if offset != len(binary):
        raise InvalidInput(f"{len(binary) - offset} bytes of binary data after the header belong to no input")
    variant = (request.parameters or {}).get("variant")
    if variant is not None and variant not in _VARIANTS:
        raise InvalidInput(f"parameter 'variant' must be one of {', '.join(_VARIANTS)}, got {variant!r}")
    return V2Request(request.id, inputs, _requested_outputs(request, model_outputs), variant)


def _split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """The JSON header and the binary tensor data after it (none without the header length)."""
    if header_length is None:
        return body, memoryview(b"")
    try:
        n = int(header_length)
    except ValueError:
        raise InvalidInput(f"{HEADER_LENGTH} must be an integer, got {header_length!r}") from None
    if not 0 < n <= len(body):
        raise InvalidInput(f"{HEADER_LENGTH} is {n} but the body has {len(body)} bytes")
    return body[:n], memoryview(body)[n:]


def _parse_header(header: bytes) -> V2InferenceRequest:
    try:
        return V2InferenceRequest.model_validate_json(header)
    except ValidationError as exc:
        summary = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5])
        details = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()[:20]]
        raise InvalidInput(f"invalid inference request: {summary}", details=details) from None


def _decode_input(item: V2RequestInput, binary: memoryview, offset: int) -> tuple[np.ndarray, int]:
    """One input's tensor, from its JSON data or from the binary data at ``offset``; and the next offset."""
    dtype = _NUMPY.get(item.datatype.upper())
    if dtype is None:
        raise InvalidInput(
            f"input {item.name!r}: datatype {item.datatype!r} is not supported here; the model takes FP32"
        )
    if any(d < 0 for d in item.shape):
        raise InvalidInput(f"input {item.name!r}: shape {item.shape} has a negative dimension")
    count = math.prod(item.shape)
    # Each dimension too: a zero elsewhere makes the count small, and numpy cannot make such a shape.
    if len(item.shape) > _MAX_DIMS or count > _MAX_ELEMENTS or any(d > _MAX_ELEMENTS for d in item.shape):
        raise InvalidInput(
            f"input {item.name!r}: shape {_shape_text(item.shape)} is too large "
            f"(at most {_MAX_DIMS} dimensions and {_MAX_ELEMENTS:,} values)"
        )
    size = (item.parameters or {}).get("binary_data_size")
    if size is not None:
        return _binary_tensor(item, dtype, count, binary[offset:], size), offset + size
    if item.data is not None:
        return _json_tensor(item, dtype, count), offset
    raise InvalidInput(f"input {item.name!r} has neither 'data' nor binary_data_size")


def _shape_text(shape: Sequence[int]) -> str:
    text = str(list(shape))
    return text if len(text) <= 80 else text[:77] + "..."


def _binary_tensor(item: V2RequestInput, dtype: np.dtype, count: int, binary: memoryview, size: object) -> np.ndarray:
    """The first ``size`` bytes of ``binary`` as the input's tensor, without a copy."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 or size > len(binary):
        raise InvalidInput(
            f"input {item.name!r}: binary_data_size {size!r} does not fit the {len(binary)} bytes left after the header"
        )
    if size != count * dtype.itemsize:
        raise InvalidInput(
            f"input {item.name!r}: {size} bytes of binary data for shape {item.shape} {item.datatype} "
            f"({count * dtype.itemsize} expected)"
        )
    return np.frombuffer(binary[:size], dtype=dtype).reshape(item.shape)


def _json_tensor(item: V2RequestInput, dtype: np.dtype, count: int) -> np.ndarray:
    """The input's JSON ``data`` (flat or nested numbers, never strings) as its tensor."""
    try:
        array = json_array(item.data, dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(f"input {item.name!r}: data is not a {item.datatype} tensor: {exc}") from None
    if array.size != count:
        raise InvalidInput(f"input {item.name!r}: {array.size} values for shape {item.shape} ({count} expected)")
    return array.reshape(item.shape)


def _requested_outputs(request: V2InferenceRequest, model_outputs: Sequence[str]) -> list[RequestedOutput]:
    binary_default = bool((request.parameters or {}).get("binary_data_output", False))
    if not request.outputs:
        return [RequestedOutput(name, binary_default) for name in model_outputs]
    requested = []
    for out in request.outputs:
        if out.name not in model_outputs:
            raise InvalidInput(f"the model has no output {out.name!r}; outputs: {', '.join(model_outputs)}")
        params = out.parameters or {}
        if any(key.startswith("shared_memory") for key in params):
            raise InvalidInput("shared-memory outputs are not supported by this server")
        classification = params.get("classification", 0)
        if not isinstance(classification, int) or isinstance(classification, bool) or classification < 0:
            raise InvalidInput(f"output {out.name!r}: classification must be a count >= 0, got {classification!r}")
        requested.append(RequestedOutput(out.name, bool(params.get("binary_data", binary_default)), classification))
    return requested


def _classify(values: np.ndarray, k: int, labels: Sequence[str]) -> np.ndarray:
    indices, scores = top_k(values.reshape(values.shape[0], -1), k)
    return np.array(
        [
            [f"{s:f}:{i}:{labels[i]}" if i < len(labels) else f"{s:f}:{i}" for i, s in zip(ri, rs, strict=True)]
            for ri, rs in zip(indices.tolist(), scores.tolist(), strict=True)
        ],
        dtype=object,
    )


def _bytes_tensor(array: np.ndarray) -> bytes:
    parts = []
    for item in array.ravel():
        raw = item.encode()
        parts.append(struct.pack("<I", len(raw)))
        parts.append(raw)
    return b"".join(parts)


def encode_infer(
    model_name: str,
    model_version: int,
    request_id: str | None,
    outputs: dict[str, np.ndarray],
    requested: Sequence[RequestedOutput],
    labels: Sequence[str],
) -> tuple[bytes, dict[str, str]]:
    """The response body and its extra headers (the header length when binary data follows)."""
    entries: list[V2ResponseOutput] = []
    chunks: list[bytes] = []
    for want in requested:
        array = outputs[want.name]
        if want.classification:
            array = _classify(array, want.classification, labels)
            datatype = "BYTES"
        else:
            datatype = V2_DATATYPES[array.dtype.name]
        shape = list(array.shape)
        if want.binary:
            raw = (
                _bytes_tensor(array)
                if datatype == "BYTES"
                else np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()
            )
            entries.append(
                V2ResponseOutput(
                    name=want.name, shape=shape, datatype=datatype, parameters={"binary_data_size": len(raw)}
                )
            )
            chunks.append(raw)
        else:
            entries.append(
                V2ResponseOutput(name=want.name, shape=shape, datatype=datatype, data=array.ravel().tolist())
            )
    header = (
        V2InferenceResponse(model_name=model_name, model_version=str(model_version), id=request_id, outputs=entries)
        .model_dump_json(exclude_none=True)
        .encode()
    )
    if not chunks:
        return header, {}
    return header + b"".join(chunks), {HEADER_LENGTH: str(len(header))}
