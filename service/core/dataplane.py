"""The data plane: resolve a model, turn inputs into its tensor, run it through its batcher.

``/predict`` and ``/v2/models/{name}/infer`` both go through here, so they share readiness
checks, input validation, batching and therefore results; they differ only in how they read
requests and write responses (:mod:`service.http.codecs`, :mod:`service.http.v2_codec`, and over
gRPC :mod:`service.grpc.codec`).

Every input tensor passes :meth:`DataPlane.check` (dtype, shape, every value finite: one
vectorised ``np.isfinite(...).all()``, counting only on failure) and every answer
:meth:`DataPlane.infer`'s check of the outputs (NaN or ±Inf from finite inputs is the model's
fault: 500 ``non_finite_output``, counted and logged, for the requests whose rows they are).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
from opentelemetry.trace import Link, Tracer
from starlette.concurrency import run_in_threadpool

from ..settings import Settings
from .batching import BatchResult
from .errors import InvalidInput, NonFiniteOutput
from .model_manager import ModelManager, Servable

__all__ = ["V2_DATATYPES", "DataPlane", "Inference", "elapsed_ms", "json_array", "top_k"]

logger = logging.getLogger(__name__)

# numpy dtype name -> Open Inference Protocol datatype
V2_DATATYPES = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
}

# The kinds of array JSON values may make for a target dtype's kind: numbers only ("NaN" and "1.5"
# are strings, true is a boolean, though numpy converts both), booleans only for bool tensors.
_JSON_KINDS = {"b": "b", "i": "iu", "u": "iu", "f": "iuf"}
_KIND_NAMES = {"U": "strings", "S": "strings", "b": "booleans", "f": "fractions", "O": "mixed or out-of-range values"}


@dataclass(frozen=True, slots=True)
class Inference:
    """The outputs for one request's inputs, and where the time went."""

    servable: Servable
    outputs: dict[str, np.ndarray]
    queue_s: float
    run_s: float
    batch_size: int

    @property
    def probabilities(self) -> np.ndarray:
        return self.outputs["probabilities"]


_NO_SPAN = nullcontext()  # reusable: entering it does nothing


class DataPlane:
    def __init__(self, manager: ModelManager, settings: Settings, tracer: Tracer | None = None) -> None:
        self.manager = manager
        self.settings = settings
        self._tracer = tracer

    def span(self, name: str) -> AbstractContextManager[object]:
        """A span of the current request's trace around a step (decode, encode); nothing when tracing is off."""
        return _NO_SPAN if self._tracer is None else self._tracer.start_as_current_span(name)

    def resolve(self, name: str | None, version: int | None = None, variant: str | None = None) -> Servable:
        """The ready servable for ``name``; 404 for an unknown model/version/variant, 503 if not ready."""
        if name is None:
            name = self._default_model()
        return self.manager.servable(name, version, variant)

    def _default_model(self) -> str:
        if self.settings.default_model:
            return self.settings.default_model
        ready = self.manager.ready_names()
        if len(ready) == 1:
            return ready[0]
        raise InvalidInput(
            "name a model (query or body 'model', or POST /models/{name}/predict); "
            f"ready: {', '.join(ready) or 'none'}"
        )

    async def decode_images(self, servable: Servable, images: Sequence[bytes]) -> np.ndarray:
        """Decode off the event loop (a large photo takes milliseconds)."""
        if len(images) > self.settings.max_images:
            raise InvalidInput(f"{len(images)} images in one request; the limit is {self.settings.max_images}")
        return await run_in_threadpool(servable.images, images)

    def tensor(self, servable: Servable, data: Any) -> np.ndarray:
        """Nested lists (N, C, H, W) or (C, H, W) to a checked float32 batch."""
        expected = servable.input.shape
        try:
            array = json_array(data, np.dtype(np.float32))
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidInput(
                f"'tensor' must be nested lists of numbers shaped {_shape_text(expected)}: {exc}",
                details={"expected": {"shape": expected, "dtype": servable.input.dtype}},
            ) from None
        if array.ndim == len(expected) - 1:
            array = array[None]
        return self.check(servable, array)

    def batch(self, servable: Servable, inputs: Sequence[tuple[str, np.ndarray]]) -> np.ndarray:
        """The batch of a v2 request's named inputs (the models take one), checked as :meth:`check` does."""
        if len(inputs) != 1:
            raise InvalidInput(f"model {servable.name!r} takes one input, {servable.input.name!r}; got {len(inputs)}")
        name, array = inputs[0]
        return self.check(servable, array, name)

    def check(self, servable: Servable, array: np.ndarray, name: str | None = None) -> np.ndarray:
        """``array`` if it is what the model takes (dtype, rank, every non-batch dimension, finite values), else 422."""
        spec = servable.input
        if name is not None and name != spec.name:
            raise InvalidInput(
                f"model {servable.name!r} has one input, {spec.name!r}; got {name!r}",
                details={
                    "expected": {"name": spec.name, "shape": spec.shape, "datatype": V2_DATATYPES.get(spec.dtype)}
                },
            )
        shape = spec.shape
        ok_shape = (
            array.ndim == len(shape)
            and array.shape[0] >= 1
            and all(want < 0 or want == got for want, got in zip(shape, array.shape, strict=True))
        )
        # Comparing dtypes is a C call; their names (only needed for the message) are computed in Python.
        if not ok_shape or (array.dtype != servable.input_dtype and array.dtype.name != spec.dtype):
            got = f"{V2_DATATYPES.get(array.dtype.name, array.dtype.name)} {list(array.shape)}"
            want = f"{V2_DATATYPES.get(spec.dtype, spec.dtype)} {_shape_text(shape)}"
            raise InvalidInput(
                f"input {spec.name!r} of {servable.name!r} must be {want}, got {got}",
                details={
                    "expected": {"name": spec.name, "shape": shape, "datatype": V2_DATATYPES.get(spec.dtype)},
                    "got": {
                        "shape": list(array.shape),
                        "datatype": V2_DATATYPES.get(array.dtype.name, array.dtype.name),
                    },
                },
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise _non_finite_input(servable, spec.name, array)
        return array if array.flags.c_contiguous else np.ascontiguousarray(array)

    async def infer(self, servable: Servable, batch: np.ndarray) -> Inference:
        """Run ``batch`` (checked) through the servable's batcher: its rows of every output, all finite."""
        result = await servable.batcher.submit(batch)
        if self._tracer is not None:
            self._trace_inference(servable, result)
        outputs = dict(zip(servable.output_names, result.outputs, strict=True))
        for values in outputs.values():
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                raise _non_finite_output(servable, outputs)
        return Inference(servable, outputs, result.queue_s, result.run_s, result.batch_size)

    def _trace_inference(self, servable: Servable, result: BatchResult) -> None:
        """The request's wait in the queue and its inference, as spans of its trace; the inference links to the
        batch's own span (one batch serves several requests, each in a trace of its own)."""
        assert self._tracer is not None
        end = time.time_ns()
        ran = end - int(result.run_s * 1e9)
        queued = ran - int(result.queue_s * 1e9)
        attributes = {"cnnserve.model": servable.name, "cnnserve.version": servable.version}
        self._tracer.start_span("queue wait", start_time=queued, attributes=attributes).end(end_time=ran)
        links = [Link(result.batch_span)] if result.batch_span is not None else []
        attributes = {**attributes, "cnnserve.variant": servable.precision, "cnnserve.batch.inputs": result.batch_size}
        self._tracer.start_span("inference", start_time=ran, links=links, attributes=attributes).end(end_time=end)


def json_array(data: Any, dtype: np.dtype) -> np.ndarray:
    """Nested lists of JSON values as an array of ``dtype``, in one conversion.

    ``ValueError`` unless they are numbers (booleans for a bool tensor): numpy would read the string
    ``"NaN"`` or ``"1.5"`` as a float, which no client means. Numbers beyond the dtype's range become
    ±Inf here (so :meth:`DataPlane.check` names them).
    """
    array = np.asarray(data)
    if array.size and array.dtype.kind not in _JSON_KINDS.get(dtype.kind, ""):
        found = _KIND_NAMES.get(array.dtype.kind, f"{array.dtype.name} values")
        raise ValueError(f"{found} are not {V2_DATATYPES.get(dtype.name, dtype.name)} values; send JSON numbers")
    with np.errstate(over="ignore"):
        return array.astype(dtype, copy=False)


def _non_finite_input(servable: Servable, name: str, array: np.ndarray) -> InvalidInput:
    bad = array.size - int(np.count_nonzero(np.isfinite(array)))
    return InvalidInput(
        f"input {name!r} of {servable.name!r} has {bad:,} value(s) that are not finite (NaN, ±Inf, or beyond "
        f"{V2_DATATYPES.get(array.dtype.name, array.dtype.name)}'s range) among {array.size:,}; send finite numbers",
        details={"input": name, "non_finite": bad, "values": array.size},
    )


def _non_finite_output(servable: Servable, outputs: dict[str, np.ndarray]) -> NonFiniteOutput:
    """The error for a request whose rows of the outputs hold NaN or ±Inf; counted and logged here."""
    n = next(iter(outputs.values())).shape[0]
    bad_rows = np.zeros(n, dtype=bool)
    names = []
    for output, values in outputs.items():
        rows = ~np.isfinite(values.reshape(n, -1)).all(axis=1)
        if rows.any():
            names.append(output)
            bad_rows |= rows
    inputs = np.flatnonzero(bad_rows).tolist()
    cause = (
        "float16 overflows beyond ±65,504: variant fp32 takes these inputs"
        if servable.precision == "fp16"
        else "its arithmetic overflowed (or divided zero by zero) on these inputs"
    )
    message = (
        f"model {servable.name!r} version {servable.version} variant {servable.precision} computed values that "
        f"are not finite (NaN or ±Inf) in {', '.join(names)} for {len(inputs)} of {n} finite input(s): {cause}"
    )
    servable.metrics.count_non_finite(servable.precision, len(inputs))
    logger.error("%s (inputs %s of the request)", message, inputs)
    details = {
        "model": servable.name,
        "version": servable.version,
        "variant": servable.precision,
        "outputs": names,
        "inputs": inputs,
    }
    return NonFiniteOutput(message, details=details)


def top_k(probabilities: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (N, k) of the k largest values per row, largest first (ties: the lower index), and those values.

    One stable sort of the row: for the class counts served (10 to 1,000) it is cheaper than a
    partition followed by sorting the k, because every numpy call costs microseconds of overhead;
    for k = 1, ``argmax`` (the first largest, as the stable sort) is a fraction of either.
    """
    if k == 1:
        order = probabilities.argmax(axis=1)[:, None]
    else:
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, : min(k, probabilities.shape[1])]
    return order, probabilities[np.arange(len(order))[:, None], order]


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join("-1 (batch)" if d < 0 else str(d) for d in shape) + "]"


def elapsed_ms(start: float, end: float | None = None) -> float:
    return round(((end if end is not None else time.perf_counter()) - start) * 1e3, 3)
