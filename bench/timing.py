"""Timing functions side by side: warm up, then alternate them in rounds (A B, B A, A B, ...).

Each function gets a turn of about ``block_s`` seconds per round; the order flips every round
so that neither side always runs first (after a pause, with caches and thread pools cold).
A short pause between turns lets the previous library's spinning worker threads (ONNX
Runtime's and OpenMP's spin-wait for a while after each call) go to sleep, so one side never
pays for the other's threads.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .stats import Distribution, median

__all__ = ["Timed", "interleave", "round_ratios"]


@dataclass
class Timed:
    """Per-call seconds of one function, all rounds pooled, and each round's median."""

    name: str
    calls: list[float] = field(default_factory=list)
    round_medians: list[float] = field(default_factory=list)

    @property
    def seconds(self) -> Distribution:
        return Distribution.of(self.calls)

    @property
    def median_s(self) -> float:
        return median(self.calls)


def interleave(
    fns: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    block_s: float,
    max_calls: int,
    warmup_calls: int = 2,
    pause_s: float = 0.05,
    max_seconds: float = math.inf,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Timed]:
    """Time every function in ``fns`` (no arguments; the result is ignored), interleaved.

    The number of calls per turn is fixed after the warm-up (``block_s`` / one call's time,
    between 1 and ``max_calls``), so every round does the same work.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    names = list(fns)
    calls_per_turn: dict[str, int] = {}
    for name in names:
        fn = fns[name]
        one = math.inf
        for _ in range(max(1, warmup_calls)):
            start = clock()
            fn()
            one = min(one, clock() - start)
        calls_per_turn[name] = max(1, min(max_calls, math.ceil(block_s / max(one, 1e-9))))
        sleep(pause_s)
    results = {name: Timed(name) for name in names}
    began = clock()
    for r in range(rounds):
        if r >= 2 and clock() - began > max_seconds:
            break
        for name in names if r % 2 == 0 else reversed(names):
            fn, timed, times = fns[name], results[name], []
            for _ in range(calls_per_turn[name]):
                start = clock()
                fn()
                times.append(clock() - start)
            timed.calls.extend(times)
            timed.round_medians.append(median(times))
            sleep(pause_s)
    return results


def round_ratios(numerator: Timed, denominator: Timed) -> list[float]:
    """Per-round ratios of medians, ``numerator / denominator`` (how consistent the comparison was)."""
    return [a / b for a, b in zip(numerator.round_medians, denominator.round_medians, strict=True) if b > 0]
