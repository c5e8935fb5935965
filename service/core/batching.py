"""Dynamic batching with Triton's semantics, one batcher per served model variant.

Requests (each a batch of one or more inputs) wait in a bounded FIFO queue. A batch is sent to
``session.run`` as soon as it holds ``max_batch_size`` inputs, or when the oldest request has
waited ``max_queue_delay_microseconds`` (a wait shorter than ``SHORTEST_WAIT_S`` is not timed: the
batch takes the requests read in the same turn of the event loop); a request is never split
across batches. Batches run one at a time per model, in a worker thread, so the event loop keeps
accepting requests (and filling the next batch) while one runs; a batch expected to take less
than ``INLINE_RUN_S`` (LeNet-5's, up to a full batch) runs on the event loop instead, since
handing it to a thread and back costs two thread switches and buys no parallelism when every
core is busy. Each caller gets the rows of the outputs that belong to its inputs: the model
computes every row independently, so the results are the same as one-at-a-time inference.

One addition to Triton's rules, *regrouping* (``BatchingConfig.regroup``): after a batch that took
``INLINE_RUN_S`` or more, the next one waits up to ``REGROUP_SHARE`` of that run for as many inputs
as were in the batcher when it ended (those it answered and those queued behind it), unless the
queue already holds them. Closed-loop clients send their next request as soon as they have an
answer; without the wait, the requests queued behind a run leave alone, the ones it answered form
the next batch, and the two groups alternate for as long as the load lasts, in batches of every
size but the efficient one. A request waits at most ``REGROUP_SHARE`` of a run longer than
Triton's rules would make it.

A full queue (``max_queue_size`` requests) refuses new requests with :class:`QueueFull`
(503 + ``Retry-After``): memory stays bounded whatever the load.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext, Tracer

from ..observability.metrics import ModelMetrics
from .errors import InferenceFailed, InvalidInput, QueueFull, ServiceError
from .runtime import ORT_ERRORS

ROOT_CONTEXT = Context()  # a batch serves many requests: its span belongs to none of their traces

__all__ = ["INLINE_RUN_S", "REGROUP_SHARE", "SHORTEST_WAIT_S", "BatchResult", "BatchingConfig", "DynamicBatcher"]

# A batch whose session.run is expected under this runs on the event loop. Handing a run to a thread
# and waking the loop when it ends costs two thread switches of latency and CPU, and buys nothing when
# every core is busy anyway, as it is under load with a worker per CPU: LeNet-5's batches (up to 32)
# serve more requests, with a lower p99, on the loop (A/B in commit b5cd574). A run this short holds
# the loop no longer than a few requests' HTTP work does; ResNet-50's runs are longer and stay in a
# thread. The estimate is a moving average of the model's own runs.
INLINE_RUN_S = 0.002

# uvloop (the service's loop) rounds a timer's delay to the nearest millisecond: a shorter wait than this
# would end in the next turn of the loop anyway. The batch leaves at once instead, with the requests read in
# the same turn (the cards' 500 µs queue delay is one such wait), and saves the timer and that turn (A/B
# with LeNet-5 in commit 9f752c5; docs/benchmarks.md has the current numbers).
SHORTEST_WAIT_S = 0.0005

# How long, as a share of the batch that just ran, the next batch may wait to regroup (see the module's
# docstring). Without regrouping, ResNet-50 under closed-loop load ran mostly batches of a few inputs,
# each input costing more CPU than in a full batch; with it, fuller batches and more requests/s at the
# same p99 (A/B in commit 4c017e8). Shorter runs than INLINE_RUN_S are not regrouped: a wait below
# uvloop's millisecond timers cannot be timed.
REGROUP_SHARE = 0.25


@dataclass(frozen=True)
class BatchingConfig:
    """Triton's ``max_batch_size`` and ``dynamic_batching`` settings (the queue policy's size included),
    and whether a batch after a long run waits to regroup (see the module's docstring)."""

    max_batch_size: int = 32
    max_queue_delay_microseconds: int = 500
    max_queue_size: int = 256
    regroup: bool = True

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.max_queue_delay_microseconds < 0:
            raise ValueError(f"max_queue_delay_microseconds must be >= 0, got {self.max_queue_delay_microseconds}")
        if self.max_queue_size < 1:
            raise ValueError(f"max_queue_size must be >= 1, got {self.max_queue_size}")


@dataclass(frozen=True, slots=True)
class BatchResult:
    outputs: list[np.ndarray]  # this request's rows of each output, in the session's output order
    queue_s: float
    run_s: float
    batch_size: int
    batch_span: SpanContext | None = None  # the batch's span, when tracing: each request's inference links to it


@dataclass(slots=True)
class _Request:
    inputs: np.ndarray
    future: asyncio.Future[BatchResult]
    enqueued: float


RunFn = Callable[[np.ndarray], Sequence[np.ndarray]]


class DynamicBatcher:
    """Queue requests for one session and run them in batches.

    The worker task exists only while there is work: it is started by the first request after
    an idle period and ends when the queue is empty, so a retired batcher (after a hot swap)
    finishes what it holds and is then simply dropped.
    """

    def __init__(
        self,
        run: RunFn,
        config: BatchingConfig,
        executor: Executor,
        metrics: ModelMetrics | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._run = run
        self._tracer = tracer
        self.config = config
        self._executor = executor
        self._metrics = metrics
        self._queue: deque[_Request] = deque()
        self._queued_inputs = 0
        self._worker: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._delay_s = config.max_queue_delay_microseconds / 1e6
        self._run_estimate_s: float | None = None  # unknown until a first batch ran in a thread
        self._wake_inputs = config.max_batch_size  # queued inputs that end the current wait early
        self._regroup_until = 0.0  # set after a long run: the next batch may wait until then
        self._regroup_inputs = 0  # ... for this many inputs

    @property
    def depth(self) -> int:
        """Requests waiting (not counting the batch being run)."""
        return len(self._queue)

    async def submit(self, inputs: np.ndarray) -> BatchResult:
        """Queue ``inputs`` (N, ...) and wait for their outputs."""
        n = inputs.shape[0]
        if n > self.config.max_batch_size:
            raise InvalidInput(
                f"{n} inputs in one request exceed this model's max_batch_size {self.config.max_batch_size}",
                details={"max_batch_size": self.config.max_batch_size},
            )
        if len(self._queue) >= self.config.max_queue_size:
            if self._metrics:
                self._metrics.queue_rejections.inc()
            raise QueueFull(f"the queue holds {len(self._queue)} requests (max_queue_size); retry shortly")
        loop = asyncio.get_running_loop()
        request = _Request(inputs, loop.create_future(), time.perf_counter())
        self._queue.append(request)
        self._queued_inputs += n
        if self._metrics:
            self._metrics.queue_depth.set(len(self._queue))
        if self._worker is None:
            self._worker = loop.create_task(self._work())
        elif self._queued_inputs >= self._wake_inputs and self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        return await request.future

    def _batch_goal(self, now: float) -> tuple[float, int]:
        """When the next batch leaves at the latest, and the queued inputs that let it leave sooner."""
        if now < self._regroup_until and self._queued_inputs < self._regroup_inputs:
            return self._regroup_until, self._regroup_inputs
        if self._queue and self._delay_s > 0:
            return self._queue[0].enqueued + self._delay_s, self.config.max_batch_size
        return now, 0

    async def _wait_for_batch(self) -> None:
        """Until the queue holds the inputs the next batch waits for, or its deadline."""
        now = time.perf_counter()
        deadline, inputs = self._batch_goal(now)
        remaining = deadline - now
        if remaining < SHORTEST_WAIT_S or self._queued_inputs >= inputs:
            return
        loop = asyncio.get_running_loop()
        self._wake = loop.create_future()
        self._wake_inputs = inputs
        timer = loop.call_later(remaining, _resolve, self._wake)
        try:
            await self._wake
        finally:
            timer.cancel()
            self._wake = None

    def _take_batch(self) -> list[_Request]:
        taken: list[_Request] = []
        size = 0
        limit = self.config.max_batch_size
        while self._queue:
            request = self._queue[0]
            n = request.inputs.shape[0]
            if taken and size + n > limit:
                break
            self._queue.popleft()
            self._queued_inputs -= n
            if request.future.done():  # the caller went away (cancelled): nothing to compute
                continue
            taken.append(request)
            size += n
        if self._metrics:
            self._metrics.queue_depth.set(len(self._queue))
        return taken

    async def _run_batch(self, batch: np.ndarray) -> Sequence[np.ndarray]:
        """``session.run`` on the loop when it is expected to be short, else in a worker thread."""
        if self._run_estimate_s is not None and self._run_estimate_s < INLINE_RUN_S:
            outputs, seconds = _timed(self._run, batch)
        else:
            loop = asyncio.get_running_loop()
            outputs, seconds = await loop.run_in_executor(self._executor, _timed, self._run, batch)
        estimate = self._run_estimate_s
        self._run_estimate_s = seconds if estimate is None else 0.8 * estimate + 0.2 * seconds
        return outputs

    def _batch_span(self, run_s: float, inputs: int, requests: int) -> SpanContext:
        """The span of the batch that just ran: a trace of its own, which the requests it served link to."""
        assert self._tracer is not None
        start, end = _span_times(run_s)
        attributes = {"cnnserve.batch.inputs": inputs, "cnnserve.batch.requests": requests}
        if self._metrics is not None:
            attributes["cnnserve.model"] = self._metrics.model
        span = self._tracer.start_span("batch inference", context=ROOT_CONTEXT, start_time=start, attributes=attributes)
        span.end(end_time=end)
        return span.get_span_context()

    async def _work(self) -> None:
        try:
            # An empty queue keeps the worker only for a regrouping wait that can be timed (none that would spin).
            while self._queue or time.perf_counter() < self._regroup_until - SHORTEST_WAIT_S:
                await self._wait_for_batch()
                taken = self._take_batch()
                if not taken:
                    continue
                start = time.perf_counter()
                batch = taken[0].inputs if len(taken) == 1 else np.concatenate([r.inputs for r in taken])
                try:
                    outputs = await self._run_batch(batch)
                except ORT_ERRORS as exc:
                    _fail(taken, InferenceFailed(f"inference failed: {exc}"))
                    continue
                except BaseException:  # cancelled, or a bug: never leave a caller waiting forever
                    _fail(taken, InferenceFailed("inference was interrupted"))
                    raise
                end = time.perf_counter()
                run_s = end - start
                if self.config.regroup and run_s >= INLINE_RUN_S:
                    self._regroup_until = end + REGROUP_SHARE * run_s
                    self._regroup_inputs = min(self.config.max_batch_size, batch.shape[0] + self._queued_inputs)
                if self._metrics:
                    self._metrics.observe_batch(batch.shape[0], run_s)
                span = self._batch_span(run_s, batch.shape[0], len(taken)) if self._tracer is not None else None
                offset = 0
                for request in taken:
                    n = request.inputs.shape[0]
                    if not request.future.done():
                        rows = [out[offset : offset + n] for out in outputs]
                        result = BatchResult(rows, start - request.enqueued, run_s, batch.shape[0], span)
                        request.future.set_result(result)
                    offset += n
        finally:
            self._worker = None
            if self._queue:  # cancelled (shutdown) with requests left: they will not be served
                _fail(self._queue, InferenceFailed("the server is shutting down"))
                self._queue.clear()
                self._queued_inputs = 0


def _span_times(seconds: float) -> tuple[int, int]:
    """The wall-clock start and end (ns since the epoch) of something that just took ``seconds``."""
    end = time.time_ns()
    return end - int(seconds * 1e9), end


def _timed(run: RunFn, batch: np.ndarray) -> tuple[Sequence[np.ndarray], float]:
    start = time.perf_counter()
    outputs = run(batch)
    return outputs, time.perf_counter() - start


def _fail(requests: Iterable[_Request], error: ServiceError) -> None:
    for request in requests:
        if not request.future.done():
            request.future.set_exception(error)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
