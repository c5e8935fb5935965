"""Summaries of timings: percentiles, medians of interleaved rounds, histogram quantiles, targets.

Percentiles use the nearest-rank definition (the value of an actual observation, never an
interpolation between two), so a p99 of 100 samples is the 99th smallest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["Distribution", "Target", "histogram_quantile", "median", "percentile"]


def percentile(values: Iterable[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``; NaN when empty."""
    if not 0 < q <= 100:
        raise ValueError(f"q must be in (0, 100], got {q}")
    data = sorted(values)
    if not data:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(data)))
    return data[rank - 1]


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """The ``q``-quantile (0 < q <= 1) of a Prometheus histogram as PromQL's ``histogram_quantile`` computes it.

    ``buckets`` are ``(le, cumulative count)`` in increasing ``le``, ``+Inf`` last: linear
    interpolation inside the bucket the rank falls in (from 0 in the first); a rank in ``+Inf``
    gives the largest finite bound. NaN when the histogram is empty.
    """
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1], got {q}")
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    rank = q * buckets[-1][1]
    lower_le, lower_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return lower_le
            return lower_le + (le - lower_le) * (rank - lower_count) / (count - lower_count)
        lower_le, lower_count = le, count
    return lower_le


def median(values: Iterable[float]) -> float:
    """The ordinary median (mean of the two middle values for an even count); NaN when empty."""
    data = sorted(values)
    n = len(data)
    if n == 0:
        return math.nan
    mid = n // 2
    return data[mid] if n % 2 else (data[mid - 1] + data[mid]) / 2


@dataclass(frozen=True)
class Distribution:
    """Count, median, p90, p99, min and max of a sample (seconds or any unit)."""

    n: int
    p50: float
    p90: float
    p99: float
    min: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Distribution:
        data = sorted(values)
        if not data:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
        return cls(
            len(data),
            median(data),
            percentile(data, 90),
            percentile(data, 99),
            data[0],
            data[-1],
            sum(data) / len(data),
        )

    def scaled(self, factor: float) -> Distribution:
        """The same distribution in another unit (``1e3``: seconds to milliseconds)."""
        return Distribution(
            self.n, *(v * factor for v in (self.p50, self.p90, self.p99, self.min, self.max, self.mean))
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Comparison = Literal[">=", "<="]


@dataclass(frozen=True)
class Target:
    """One target of the issue: what was measured against the bound it must reach.

    ``margin`` is how far past the bound the value is, relative to the bound (+10%: met with
    room; -20%: missed by a fifth); ``why`` explains a miss (measured, never guessed). A target
    with ``retired`` (why it no longer is one) is still measured and reported, for information,
    outside the count.
    """

    benchmark: str
    name: str
    value: float
    bound: float
    comparison: Comparison
    unit: str = ""
    why: str = ""
    measured_on: str = ""
    retired: str = ""

    @property
    def known(self) -> bool:
        return not math.isnan(self.value)

    @property
    def met(self) -> bool:
        if not self.known:
            return False
        return self.value >= self.bound if self.comparison == ">=" else self.value <= self.bound

    @property
    def margin(self) -> float:
        """Signed relative distance past the bound (positive: met)."""
        if not self.known or self.bound == 0:
            return math.nan
        change = (self.value - self.bound) / abs(self.bound)
        return change if self.comparison == ">=" else -change

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(met=self.met, margin=None if math.isnan(self.margin) else self.margin)
        if math.isnan(self.value):
            data["value"] = None
        return data
