"""Closed-loop load generators for the Open Inference Protocol over gRPC, as :mod:`bench.loadgen` is for HTTP.

``concurrency`` channels, each its own HTTP/2 connection (``grpc.use_local_subchannel_pool``: the
kernel spreads connections, not calls, over the server's workers, as it does the HTTP load's),
each with one request in flight at a time: a unary ``ModelInfer`` call (:func:`run_grpc_load`, what
``tritonclient.grpc``'s ``infer`` does), or the next message on one ``ModelStreamInfer`` stream per
channel (``stream=True``, what its ``async_stream_infer`` does). A request is a ``ModelInferRequest``
serialized once and sent as bytes, an answer read as bytes and parsed only to check it, as the HTTP
load's are: what the client costs per request is then close to the protocol's own cost, and it is
measured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import grpc
import numpy as np
from tritonclient.grpc import service_pb2

from .loadgen import Check, LoadResult

__all__ = ["INFER_METHOD", "STREAM_METHOD", "infer_request", "run_grpc_load", "stream_check", "top_class_check"]

INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"
STREAM_METHOD = "/inference.GRPCInferenceService/ModelStreamInfer"
_CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_receive_message_length", -1)]


def infer_request(model: str, tensor: np.ndarray) -> bytes:
    """``ModelInfer`` for ``tensor`` as raw contents, the top class back (``classification: 1``), serialized."""
    request = service_pb2.ModelInferRequest(model_name=model)
    request.inputs.add(name="input", datatype="FP32", shape=tensor.shape)
    request.raw_input_contents.append(np.ascontiguousarray(tensor, dtype=np.float32).tobytes())
    output = request.outputs.add(name="probabilities")
    output.parameters["classification"].int64_param = 1
    return request.SerializeToString()


def top_class_check(classes: Sequence[int]) -> Check:
    """Whether the answer to request ``i`` names the top class of input ``i`` (raw BYTES "score:index:label")."""

    def check(index: int, body: bytes) -> bool:
        response = service_pb2.ModelInferResponse.FromString(body)
        raw = response.raw_output_contents[0] if response.raw_output_contents else b""
        entry = raw[4:].split(b":")  # the first string after its 4-byte length
        return len(entry) > 1 and entry[1].isdigit() and int(entry[1]) == classes[index]

    return check


def stream_check(check: Check) -> Check:
    """``check`` of the ``ModelInferResponse`` in a ``ModelStreamInferResponse`` (wrong if it is an error)."""

    def checked(index: int, body: bytes) -> bool:
        message = service_pb2.ModelStreamInferResponse.FromString(body)
        return not message.error_message and check(index, message.infer_response.SerializeToString())

    return checked


Exchange = Callable[[bytes], Awaitable[bytes]]  # one request sent, its answer received


async def _closed_loop(
    exchanges: Sequence[Exchange],
    data: Sequence[bytes],
    result: LoadResult,
    limits: tuple[int, float],
    check: Check | None,
) -> None:
    max_requests, deadline = limits
    issued = 0

    async def worker(first: int, exchange: Exchange) -> None:
        nonlocal issued
        index = first
        while issued < max_requests and time.perf_counter() < deadline:
            issued += 1
            index = (index + 1) % len(data)
            sent = time.perf_counter()
            try:
                body = await exchange(data[index])
            except grpc.aio.AioRpcError as exc:
                status = _HTTP_OF.get(exc.code(), 500)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                continue
            result.latencies.append(time.perf_counter() - sent)
            result.statuses[200] = result.statuses.get(200, 0) + 1
            if check is not None:
                result.checked += 1
                result.wrong += not check(index, body)

    await asyncio.gather(*(worker(i, exchange) for i, exchange in enumerate(exchanges)))


def _streamed(call: grpc.aio.StreamStreamCall) -> Exchange:
    async def exchange(request: bytes) -> bytes:
        await call.write(request)
        return await call.read()

    return exchange


# Failures counted under the HTTP status the protocol's REST binding would have answered.
_HTTP_OF = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


async def run_grpc_load(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    warmup_requests: int = 0,
    check: Check | None = None,
    stream: bool = False,
) -> LoadResult:
    """Closed-loop load over ``concurrency`` connections, as :func:`bench.loadgen.run_load` over HTTP; with
    ``stream``, over one ``ModelStreamInfer`` per connection (``check`` then gets each stream message)."""
    channels = [grpc.aio.insecure_channel(f"{host}:{port}", options=_CHANNEL_OPTIONS) for _ in range(concurrency)]
    if stream:  # bytes in, bytes out: no serializers
        exchanges = [_streamed(channel.stream_stream(STREAM_METHOD)()) for channel in channels]
    else:
        exchanges = [channel.unary_unary(INFER_METHOD) for channel in channels]
    result = LoadResult(concurrency)
    try:
        if warmup_requests:
            per_channel = -(-warmup_requests // concurrency)

            async def warm(exchange: Exchange) -> None:
                for n in range(per_channel):
                    await exchange(requests[n % len(requests)])

            await asyncio.gather(*(warm(exchange) for exchange in exchanges))
        cpu0, start = time.process_time(), time.perf_counter()
        await _closed_loop(exchanges, requests, result, (max_requests, start + max_seconds), check)
        result.wall_s = time.perf_counter() - start
        result.client_cpu_s = time.process_time() - cpu0
    finally:
        for channel in channels:
            await channel.close()
    return result
