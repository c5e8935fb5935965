"""Dynamic batching: Triton's semantics, each caller its own rows, a bounded queue.

The unit tests drive :class:`DynamicBatcher` with a fake model (row i of the output is a
function of row i of the input only, like a classifier); the HTTP test sends concurrent
requests to a real server and checks results against direct ONNX Runtime and the batch-size
metric.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton

from service.core.batching import REGROUP_SHARE, SHORTEST_WAIT_S, BatchingConfig, DynamicBatcher
from service.core.errors import InferenceFailed, InvalidInput, QueueFull
from service.observability.metrics import Metrics

from .helpers import assert_a_best_class, direct
from .live import make_settings

pytestmark = pytest.mark.xdist_group("service")


class FakeModel:
    """out = 2 * in + 1 per row; records the batch sizes it ran; optionally slow or failing."""

    def __init__(self, seconds: float = 0.0, fail_on: float | None = None) -> None:
        self.sizes: list[int] = []
        self.seconds = seconds
        self.fail_on = fail_on
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        self.gate.wait(10)
        self.sizes.append(batch.shape[0])
        if self.fail_on is not None and (batch == self.fail_on).any():
            raise RuntimeError("boom")
        time.sleep(self.seconds)
        return [batch * 2 + 1, batch.sum(axis=1)]


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def executor():
    with ThreadPoolExecutor(1) as pool:
        yield pool


def test_config_validates() -> None:
    assert BatchingConfig() == BatchingConfig(32, 500, 256, regroup=True)
    for bad in ({"max_batch_size": 0}, {"max_queue_delay_microseconds": -1}, {"max_queue_size": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            BatchingConfig(**bad)


def test_concurrent_requests_form_batches_and_get_their_own_rows(executor) -> None:
    model = FakeModel(seconds=0.005)
    batcher = DynamicBatcher(model, BatchingConfig(max_batch_size=8, max_queue_delay_microseconds=20_000), executor)
    inputs = [np.full((1 + i % 3, 4), i, dtype=np.float32) for i in range(30)]

    async def main():
        return await asyncio.gather(*(batcher.submit(x) for x in inputs))

    results = run(main())
    for x, result in zip(inputs, results, strict=True):
        np.testing.assert_array_equal(result.outputs[0], x * 2 + 1)
        np.testing.assert_array_equal(result.outputs[1], x.sum(axis=1))
        assert result.batch_size >= x.shape[0]
    assert sum(model.sizes) == sum(x.shape[0] for x in inputs)
    assert max(model.sizes) <= 8 and len(model.sizes) < len(inputs)  # batched, never over the limit


def test_full_batch_goes_without_waiting_for_the_delay(executor) -> None:
    model = FakeModel()
    # A 10 s delay: only a full batch can leave before the test times out.
    batcher = DynamicBatcher(model, BatchingConfig(max_batch_size=4, max_queue_delay_microseconds=10_000_000), executor)

    async def main():
        return await asyncio.wait_for(
            asyncio.gather(*(batcher.submit(np.ones((1, 2), np.float32)) for _ in range(4))), 5
        )

    results = run(main())
    assert model.sizes == [4] and all(r.batch_size == 4 for r in results)


def test_a_lone_request_waits_the_delay_then_runs(executor) -> None:
    model = FakeModel()
    batcher = DynamicBatcher(model, BatchingConfig(max_batch_size=8, max_queue_delay_microseconds=30_000), executor)
    result = run(batcher.submit(np.ones((1, 2), np.float32)))
    assert result.queue_s >= 0.029 and model.sizes == [1]


def test_a_delay_too_short_for_the_loops_timers_is_not_timed(executor) -> None:
    model = FakeModel()
    delay_us = int(SHORTEST_WAIT_S * 1e6) - 100
    # Without regrouping: on a loaded machine the first run (in the thread) can take 2 ms, and its window is a timer.
    config = BatchingConfig(max_batch_size=8, max_queue_delay_microseconds=delay_us, regroup=False)
    batcher = DynamicBatcher(model, config, executor)

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        timers: list[float] = []
        call_later = loop.call_later
        loop.call_later = lambda delay, *args, **kwargs: timers.append(delay) or call_later(delay, *args, **kwargs)
        await asyncio.gather(*(batcher.submit(np.ones((1, 2), np.float32)) for _ in range(3)))
        return timers

    assert run(main()) == [] and model.sizes == [3]  # no timer, and the requests of the same turn still batch


def test_requests_are_never_split(executor) -> None:
    model = FakeModel()
    batcher = DynamicBatcher(model, BatchingConfig(max_batch_size=4, max_queue_delay_microseconds=50_000), executor)

    async def main():
        return await asyncio.gather(*(batcher.submit(np.ones((3, 2), np.float32)) for _ in range(3)))

    run(main())
    assert model.sizes == [3, 3, 3]


def test_request_over_max_batch_size_is_rejected(executor) -> None:
    batcher = DynamicBatcher(FakeModel(), BatchingConfig(max_batch_size=4), executor)
    with pytest.raises(InvalidInput, match="max_batch_size 4"):
        run(batcher.submit(np.ones((5, 2), np.float32)))


def test_full_queue_refuses_with_retry_after(executor) -> None:
    model = FakeModel()
    model.gate.clear()  # the first batch blocks in the model: the queue behind it fills up
    metrics = Metrics()
    config = BatchingConfig(max_batch_size=1, max_queue_delay_microseconds=0, max_queue_size=3)
    batcher = DynamicBatcher(model, config, executor, metrics.model("fake"))

    async def main():
        first = asyncio.ensure_future(batcher.submit(np.ones((1, 2), np.float32)))
        await asyncio.sleep(0.05)  # running now, queue empty
        waiting = [asyncio.ensure_future(batcher.submit(np.ones((1, 2), np.float32))) for _ in range(3)]
        await asyncio.sleep(0.01)
        assert batcher.depth == 3
        with pytest.raises(QueueFull) as info:
            await batcher.submit(np.ones((1, 2), np.float32))
        model.gate.set()
        await asyncio.gather(first, *waiting)
        return info.value

    error = run(main())
    assert error.status_code == 503 and error.headers == {"Retry-After": "1"}
    assert metrics.queue_rejections.labels("fake")._value.get() == 1
    assert metrics.queue_depth.labels("fake")._value.get() == 0


def test_a_failing_batch_fails_its_requests_and_the_batcher_goes_on(executor) -> None:
    model = FakeModel(fail_on=-1.0)
    batcher = DynamicBatcher(model, BatchingConfig(max_batch_size=1, max_queue_delay_microseconds=0), executor)

    async def main():
        with pytest.raises(InferenceFailed, match="boom"):
            await batcher.submit(np.full((1, 2), -1.0, np.float32))
        return await batcher.submit(np.ones((1, 2), np.float32))

    np.testing.assert_array_equal(run(main()).outputs[0], np.full((1, 2), 3.0))


RUN_S = 0.04  # a long run (it goes to the thread): REGROUP_SHARE of it is a 10 ms window


def _closed_loop(executor, regroup: bool, clients: int = 6, rounds: int = 6) -> tuple[list[int], list[float]]:
    """Batch sizes and queue waits when closed-loop clients send requests one after another; two start
    first and the others 5 ms later, in the first run, so that they begin as two groups."""
    model = FakeModel(seconds=RUN_S)
    config = BatchingConfig(max_batch_size=8, max_queue_delay_microseconds=0, regroup=regroup)
    batcher = DynamicBatcher(model, config, executor)
    waits: list[float] = []

    async def client(start_s: float) -> None:
        await asyncio.sleep(start_s)
        for _ in range(rounds):
            waits.append((await batcher.submit(np.ones((1, 2), np.float32))).queue_s)
            await asyncio.sleep(0.001)  # the client's side of the round trip

    async def main() -> None:
        await asyncio.gather(*(client(0.0 if i < 2 else 0.005) for i in range(clients)))

    run(main())
    return model.sizes, waits


def test_without_regrouping_closed_loop_clients_stay_in_two_alternating_groups(executor) -> None:
    sizes, _ = _closed_loop(executor, regroup=False)
    assert sizes[:4] == [2, 4, 2, 4] and max(sizes) == 4  # Triton's rules: a batch never gathers all 6


def test_regrouping_gathers_the_clients_into_one_batch(executor) -> None:
    sizes, waits = _closed_loop(executor, regroup=True)
    assert sizes == [2, 6, 6, 6, 6, 6, 4]  # the four that started late send their last request alone
    assert max(waits) < RUN_S * (1 + REGROUP_SHARE) + 0.03  # behind one run and one window at most


def test_regrouping_waits_at_most_its_share_of_the_run_for_clients_that_do_not_come_back(executor) -> None:
    model = FakeModel(seconds=RUN_S)
    batcher = DynamicBatcher(model, BatchingConfig(max_batch_size=8, max_queue_delay_microseconds=0), executor)

    async def main() -> float:
        await asyncio.gather(*(batcher.submit(np.ones((1, 2), np.float32)) for _ in range(2)))
        return (await batcher.submit(np.ones((1, 2), np.float32))).queue_s  # only one of the two comes back

    wait = run(main())
    assert REGROUP_SHARE * RUN_S - 0.003 <= wait <= REGROUP_SHARE * RUN_S + 0.025
    assert model.sizes == [2, 1]


def test_regrouping_never_delays_a_lone_client(executor) -> None:
    sizes, waits = _closed_loop(executor, regroup=True, clients=1)
    assert sizes == [1] * 6 and max(waits) < 0.005  # the next request is the whole group: it leaves at once


def _batch_histogram(text: str, model: str) -> tuple[float, float]:
    """(batches of size 1, all batches) from the Prometheus text."""
    ones = re.search(rf'cnnserve_batch_size_bucket{{le="1.0",model="{model}"}} (\S+)', text)
    count = re.search(rf'cnnserve_batch_size_count{{model="{model}"}} (\S+)', text)
    assert ones and count, text
    return float(ones.group(1)), float(count.group(1))


def test_concurrent_http_requests_are_batched_and_correct(
    repository: Path, grey_model: str, start_server, cards
) -> None:
    # A 20 ms queue delay (Triton's max_queue_delay_microseconds): concurrent callers share batches.
    live = start_server(make_settings(repository, max_queue_delay_microseconds=20_000, max_batch_size=8))
    shape = cards[grey_model].inputs[0].shape[1:]
    rng = np.random.default_rng(7)
    inputs = [rng.standard_normal((1, *shape)).astype(np.float32) for _ in range(24)]

    def call(x: np.ndarray) -> np.ndarray:
        client = triton.InferenceServerClient(live.url.removeprefix("http://"))
        tensor = triton.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=True)
        result = client.infer(grey_model, [tensor], outputs=[triton.InferRequestedOutput("probabilities")])
        client.close()
        return result.as_numpy("probabilities")

    with ThreadPoolExecutor(12) as pool:
        outputs = list(pool.map(call, inputs))
    for x, got in zip(inputs, outputs, strict=True):
        want = direct(repository, grey_model, x)["probabilities"]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert_a_best_class(int(got.argmax()), want[0])  # batched with others: the same decision

    with live.client() as c:
        ones, count = _batch_histogram(c.get("/metrics").text, grey_model)
    assert count < len(inputs) + 1  # fewer session.run calls than requests (+1: the warm-up is not counted)
    assert count - ones >= 1  # at least one batch held several requests


def test_full_queue_is_503_with_retry_after_over_http(repository: Path, grey_model: str, start_server, cards) -> None:
    # One request may wait (200 ms for company); the next finds the queue full.
    live = start_server(
        make_settings(repository, max_queue_size=1, max_queue_delay_microseconds=200_000, variants=["fp32"])
    )
    x = np.zeros((1, *cards[grey_model].input.shape), np.float32).tolist()

    def call(_: int):
        with live.client() as c:
            return c.post(f"/models/{grey_model}/predict", json={"tensor": x})

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(call, range(4)))
    codes = sorted(r.status_code for r in responses)
    assert codes[0] == 200 and 503 in codes, codes
    refused = next(r for r in responses if r.status_code == 503)
    assert refused.headers["retry-after"] == "1" and refused.json()["code"] == "queue_full"
    with live.client() as c:
        assert f'cnnserve_queue_rejections_total{{model="{grey_model}"}}' in c.get("/metrics").text
