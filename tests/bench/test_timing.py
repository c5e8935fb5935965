"""The harness's statistics and interleaving, on a fake clock."""

from __future__ import annotations

import math

import pytest

from bench.stats import Distribution, Target, histogram_quantile, median, percentile
from bench.timing import interleave, round_ratios


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 99) == 99 and percentile(values, 50) == 50 and percentile(values, 100) == 100
    assert median([3, 1, 2, 10]) == 2.5 and math.isnan(median([]))
    d = Distribution.of([0.001, 0.002, 0.003]).scaled(1e3)
    assert (d.n, d.p50, d.min, d.max) == (3, 2.0, 1.0, 3.0)
    with pytest.raises(ValueError):
        percentile(values, 0)


def test_histogram_quantile_interpolates_like_promql() -> None:
    # 10 observations <= 1 ms, 80 in (1, 5] ms, 10 in (5, 10] ms, none above.
    buckets = [(0.001, 10.0), (0.005, 90.0), (0.01, 100.0), (math.inf, 100.0)]
    assert histogram_quantile(0.05, buckets) == pytest.approx(0.0005)  # half-way into the first bucket, from 0
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.001 + 0.004 * 40 / 80)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.005 + 0.005 * 9 / 10)
    assert histogram_quantile(0.99, [(0.001, 1.0), (math.inf, 100.0)]) == 0.001  # in +Inf: the largest finite bound
    assert math.isnan(histogram_quantile(0.5, [(0.001, 0.0), (math.inf, 0.0)]))
    with pytest.raises(ValueError):
        histogram_quantile(99, buckets)


def test_targets_know_which_way_is_good() -> None:
    assert Target("b", "speed", 2.0, 1.4, ">=").met and Target("b", "speed", 2.0, 1.4, ">=").margin == pytest.approx(
        0.4286, 1e-3
    )
    missed = Target("b", "latency", 1.5, 1.0, "<=", "ms")
    assert not missed.met and missed.margin == pytest.approx(-0.5)
    assert (
        not Target("b", "x", math.nan, 1.0, "<=").met
        and Target("b", "x", math.nan, 1.0, "<=").to_dict()["value"] is None
    )


class FakeClock:
    """Each call of a timed function advances time by its cost; sleeping advances it too."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def work(self, cost: float):
        def fn() -> None:
            self.now += cost

        return fn


def test_interleave_alternates_and_fixes_the_work_per_turn() -> None:
    clock = FakeClock()
    order: list[str] = []

    def traced(name: str, cost: float):
        work = clock.work(cost)
        return lambda: (order.append(name), work())

    # Costs and block in powers of two: the fake clock's sums stay exact.
    timed = interleave(
        {"a": traced("a", 2**-6), "b": traced("b", 2**-5)},
        rounds=3,
        block_s=2**-3,
        max_calls=100,
        warmup_calls=1,
        clock=clock,
        sleep=clock.sleep,
    )
    assert len(timed["a"].calls) == 3 * 8 and len(timed["b"].calls) == 3 * 4
    assert timed["a"].median_s == 2**-6 and timed["b"].median_s == 2**-5
    calls = order[2:]  # after one warm-up call each
    firsts = [calls[0], calls[8 + 4], calls[2 * (8 + 4)]]
    assert firsts == ["a", "b", "a"], "rounds alternate their order: A B | B A | A B"
    assert round_ratios(timed["b"], timed["a"]) == pytest.approx([2.0, 2.0, 2.0])


def test_interleave_stops_adding_rounds_after_max_seconds() -> None:
    clock = FakeClock()
    timed = interleave(
        {"slow": clock.work(1.0)},
        rounds=50,
        block_s=1.0,
        max_calls=1,
        warmup_calls=1,
        max_seconds=5.0,
        clock=clock,
        sleep=clock.sleep,
    )
    rounds = len(timed["slow"].round_medians)
    assert 2 <= rounds <= 7, f"ran {rounds} rounds of 1 s against a 5 s bound"
