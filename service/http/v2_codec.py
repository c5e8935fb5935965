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

import functools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError

from ..core.dataplane import V2_DATATYPES, json_array
from ..core.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from ..core.protocol import (
    V2_BY_DTYPE,
    RequestedOutput,
    bytes_tensor,
    classify,
    element_count,
    numpy_dtype,
    requested_outputs,
    shape_text,
    variant,
)
from .v2_schemas import V2InferenceRequest, V2InferenceResponse, V2RequestInput, V2ResponseOutput

__all__ = ["HEADER_LENGTH", "V2Request", "decode_infer", "encode_infer", "inflate"]

HEADER_LENGTH = "Inference-Header-Content-Length"


@dataclass(frozen=True, slots=True)
class V2Request:
    id: str | None
    inputs: list[tuple[str, np.ndarray]]
    outputs: tuple[RequestedOutput, ...]
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
    """Parse an infer request; 422 naming what is wrong (never an exception from numpy).

    Everything but the binary tensors themselves depends only on the JSON header, the model's
    outputs and how many bytes follow the header, and clients send the same header again and
    again: what a short header says (its checks passed) is remembered, so a request with a known
    header costs one ``np.frombuffer`` per input. Errors are never remembered: they are found again.
    """
    header, binary = _split_body(body, header_length)
    read = _known_header if len(header) <= _KNOWN_HEADER_BYTES else _read_header
    return read(bytes(header), tuple(model_outputs), len(binary)).request(binary)


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


@dataclass(frozen=True, slots=True)
class _Input:
    name: str
    array: np.ndarray | None  # the tensor of JSON data (read-only); None: binary, at offset
    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int = 0
    size: int = 0


@dataclass(frozen=True, slots=True)
class _Header:
    """What a request's JSON header says, its checks passed for ``binary_size`` bytes after it."""

    id: str | None
    inputs: tuple[_Input, ...]
    outputs: tuple[RequestedOutput, ...]
    variant: str | None

    def request(self, binary: memoryview) -> V2Request:
        inputs = [
            (
                i.name,
                i.array
                if i.array is not None
                else np.frombuffer(binary[i.offset : i.offset + i.size], dtype=i.dtype).reshape(i.shape),
            )
            for i in self.inputs
        ]
        return V2Request(self.id, inputs, self.outputs, self.variant)


def _read_header(header: bytes, model_outputs: tuple[str, ...], binary_size: int) -> _Header:
    request = _parse_header(header)
    inputs = []
    offset = 0
    for item in request.inputs:
        tensor = _input(item, offset, binary_size)
        offset += tensor.size
        inputs.append(tensor)
    if offset != binary_size:
        raise InvalidInput(f"{binary_size - offset} bytes of binary data after the header belong to no input")
    parameters = request.parameters or {}
    outputs = requested_outputs(
        ((out.name, out.parameters or {}) for out in request.outputs or ()),
        model_outputs,
        bool(parameters.get("binary_data_output", False)),
    )
    return _Header(request.id, tuple(inputs), tuple(outputs), variant(parameters))


# Headers of binary requests are a few hundred bytes; a longer one carries JSON data and is not kept.
_KNOWN_HEADER_BYTES = 4096
_known_header = functools.lru_cache(maxsize=256)(_read_header)


def _parse_header(header: bytes) -> V2InferenceRequest:
    try:
        return V2InferenceRequest.model_validate_json(header)
    except ValidationError as exc:
        summary = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5])
        details = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()[:20]]
        raise InvalidInput(f"invalid inference request: {summary}", details=details) from None


def _input(item: V2RequestInput, offset: int, binary_size: int) -> _Input:
    """One input of the header: binary (its place after the header) or JSON data (its tensor)."""
    dtype = numpy_dtype(item.name, item.datatype)
    count = element_count(item.name, item.shape)
    shape = tuple(item.shape)
    size = (item.parameters or {}).get("binary_data_size")
    if size is not None:
        _check_binary_size(item, dtype, count, size, binary_size - offset)
        return _Input(item.name, None, dtype, shape, offset, size)
    if item.data is None:
        raise InvalidInput(f"input {item.name!r} has neither 'data' nor binary_data_size")
    array = _json_tensor(item, dtype, count).reshape(shape)
    array.flags.writeable = False  # a known header's tensor is shared by the requests that repeat it
    return _Input(item.name, array, dtype, shape)


def _check_binary_size(item: V2RequestInput, dtype: np.dtype, count: int, size: object, left: int) -> None:
    """``size`` bytes of binary data fit in the ``left`` bytes after the header, and are the tensor's."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 or size > left:
        raise InvalidInput(
            f"input {item.name!r}: binary_data_size {size!r} does not fit the {left} bytes left after the header"
        )
    if size != count * dtype.itemsize:
        raise InvalidInput(
            f"input {item.name!r}: {size} bytes of binary data for shape {shape_text(item.shape)} {item.datatype} "
            f"({count * dtype.itemsize} expected)"
        )


def _json_tensor(item: V2RequestInput, dtype: np.dtype, count: int) -> np.ndarray:
    """The input's JSON ``data`` (flat or nested numbers, never strings) as a flat tensor."""
    try:
        array = json_array(item.data, dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(f"input {item.name!r}: data is not a {item.datatype} tensor: {exc}") from None
    if array.size != count:
        raise InvalidInput(f"input {item.name!r}: {array.size} values for shape {item.shape} ({count} expected)")
    return array


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
            array = classify(array, want.classification, labels)
            datatype = "BYTES"
        else:
            datatype = V2_BY_DTYPE.get(array.dtype) or V2_DATATYPES[array.dtype.name]
        shape = list(array.shape)
        if want.binary:
            raw = (
                bytes_tensor(array)
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
