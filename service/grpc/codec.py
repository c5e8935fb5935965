"""``ModelInferRequest`` to the data plane's tensors, and its outputs to a ``ModelInferResponse``.

Inputs come as ``raw_input_contents`` (one little-endian buffer per input, in the inputs' order:
what ``tritonclient.grpc`` sends) or as typed ``contents`` (``fp32_contents`` and the like: what a
client of the bare ``.proto`` often sends); each becomes a numpy array in one call.

Outputs go back as ``raw_output_contents`` (as Triton answers), or as typed ``contents`` when every
output asked for says ``binary_data: false`` (or the request parameter ``binary_data_output``
does): the protocol's raw form covers every output of a response or none, so a request that
mixes the two is refused. ``classification: k`` answers a BYTES tensor of the top k, as over HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tritonclient.grpc import service_pb2

from ..core.dataplane import V2_DATATYPES
from ..core.errors import InvalidInput
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

__all__ = ["GrpcRequest", "decode_infer", "encode_infer"]

# The typed contents field of each datatype (the protocol's InferTensorContents); FP16 is raw only.
_CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


@dataclass(frozen=True, slots=True)
class GrpcRequest:
    id: str
    inputs: list[tuple[str, np.ndarray]]
    outputs: tuple[RequestedOutput, ...]
    variant: str | None


def parameters(entries: Mapping[str, service_pb2.InferParameter]) -> dict[str, Any]:
    """A parameters map as plain values (bool, int, str or float: whichever the client set)."""
    return {key: getattr(value, value.WhichOneof("parameter_choice") or "bool_param") for key, value in entries.items()}


def decode_infer(request: service_pb2.ModelInferRequest, model_outputs: Sequence[str]) -> GrpcRequest:
    """The request's inputs as arrays and the outputs it asks for; 422 (INVALID_ARGUMENT) naming what is wrong."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(
            f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs: send one per input, or typed contents"
        )
    inputs = [(tensor.name, _array(tensor, raw[i] if raw else None)) for i, tensor in enumerate(request.inputs)]
    options = parameters(request.parameters)
    outputs = requested_outputs(
        ((out.name, parameters(out.parameters)) for out in request.outputs),
        model_outputs,
        bool(options.get("binary_data_output", True)),
    )
    if len({out.binary for out in outputs}) > 1:
        raise InvalidInput(
            "binary_data must be the same for every output over gRPC: raw_output_contents holds every output or none"
        )
    return GrpcRequest(request.id, inputs, tuple(outputs), variant(options))


def _array(tensor: service_pb2.ModelInferRequest.InferInputTensor, raw: bytes | None) -> np.ndarray:
    dtype = numpy_dtype(tensor.name, tensor.datatype)
    shape = tuple(tensor.shape)
    count = element_count(tensor.name, shape)
    if raw is not None:
        if len(raw) != count * dtype.itemsize:
            raise InvalidInput(
                f"input {tensor.name!r}: {len(raw)} bytes of raw_input_contents for shape {shape_text(shape)} "
                f"{tensor.datatype} ({count * dtype.itemsize} expected)"
            )
        return np.frombuffer(raw, dtype=dtype).reshape(shape)
    field = _CONTENTS.get(tensor.datatype.upper())
    if field is None:
        raise InvalidInput(f"input {tensor.name!r}: {tensor.datatype} has no typed contents; send raw_input_contents")
    values = getattr(tensor.contents, field)
    if len(values) != count:
        raise InvalidInput(
            f"input {tensor.name!r}: {len(values)} values in contents.{field} for shape {shape_text(shape)} "
            f"({count} expected)"
        )
    return np.array(values, dtype=dtype).reshape(shape)


def encode_infer(
    model_name: str,
    model_version: int,
    request_id: str,
    outputs: dict[str, np.ndarray],
    requested: Sequence[RequestedOutput],
    labels: Sequence[str],
) -> service_pb2.ModelInferResponse:
    response = service_pb2.ModelInferResponse(model_name=model_name, model_version=str(model_version), id=request_id)
    for want in requested:
        array = outputs[want.name]
        if want.classification:
            array = classify(array, want.classification, labels)
            datatype = "BYTES"
        else:
            datatype = V2_BY_DTYPE.get(array.dtype) or V2_DATATYPES[array.dtype.name]
        tensor = response.outputs.add(name=want.name, datatype=datatype, shape=array.shape)
        if want.binary:
            response.raw_output_contents.append(
                bytes_tensor(array)
                if datatype == "BYTES"
                else np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()
            )
        elif datatype == "BYTES":
            tensor.contents.bytes_contents.extend(item.encode() for item in array.ravel())
        else:
            getattr(tensor.contents, _CONTENTS[datatype]).extend(array.ravel().tolist())
    return response
