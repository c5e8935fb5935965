"""How late the event loop runs a timer: the wait every request, a health probe included, has for its turn.

Nothing slow runs on the loop (decoding and inference run in worker threads), so a late timer
means the loop is busy with many requests' HTTP work, not blocked by one; the histogram
``cnnserve_event_loop_lag_seconds`` shows which (``docs/service.md``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["LAG_INTERVAL_S", "watch_loop_lag"]

LAG_INTERVAL_S = 0.025  # 40 wake-ups a second: a fraction of a millisecond of CPU per second


async def watch_loop_lag(observe: Callable[[float], None], interval_s: float = LAG_INTERVAL_S) -> None:
    """Sleep ``interval_s`` again and again, passing ``observe`` how much later than asked each sleep ended."""
    while True:
        due = time.perf_counter() + interval_s
        await asyncio.sleep(interval_s)
        observe(max(0.0, time.perf_counter() - due))
