"""The event-loop lag watcher: a loop blocked for 60 ms shows a 60 ms lag; an idle one almost none."""

from __future__ import annotations

import asyncio
import time

from service.observability.loop_lag import watch_loop_lag


async def _watch(seconds: float, block_s: float = 0.0) -> list[float]:
    lags: list[float] = []
    watcher = asyncio.create_task(watch_loop_lag(lags.append, interval_s=0.01))
    await asyncio.sleep(seconds / 2)
    if block_s:
        time.sleep(block_s)  # what a blocking call on the loop would do
    await asyncio.sleep(seconds / 2)
    watcher.cancel()
    return lags


def test_a_blocked_loop_shows_as_lag() -> None:
    lags = asyncio.run(_watch(0.2, block_s=0.06))
    assert max(lags) >= 0.05, lags
    assert sorted(lags)[len(lags) // 2] < 0.01, "only the turn that waited for the blocking call is late"


def test_an_idle_loop_has_almost_none() -> None:
    lags = asyncio.run(_watch(0.2))
    assert len(lags) >= 10 and all(lag >= 0 for lag in lags)
    assert sorted(lags)[len(lags) // 2] < 0.005, lags
