"""CPython's garbage collector tuned for a server: large long-lived object graphs, many short requests.

A full (generation 2) collection scans every object the collector tracks: with the libraries, the
models' sessions and cards loaded, about 140,000 of them, 100-250 ms on a 2-core machine - a pause
every few thousand requests that every request in flight waits for (it was most of LeNet-5's p99
at concurrency 64). So:

* once models are loaded or reloaded, what exists is collected once and then frozen
  (``gc.freeze``): it lives as long as the process or the model, and full collections skip it
  (0.15 ms instead of ~200 ms). The previous freeze is undone first, so a replaced model's
  objects are collected like any others;
* the first generation is collected after 10,000 net allocations instead of 700: most of a
  request's objects are gone by then, and collections are fourteen times rarer.
"""

from __future__ import annotations

import gc

__all__ = ["FIRST_GENERATION_THRESHOLD", "freeze_long_lived", "tune"]

FIRST_GENERATION_THRESHOLD = 10_000


def tune() -> None:
    _, second, third = gc.get_threshold()
    gc.set_threshold(FIRST_GENERATION_THRESHOLD, second, third)


def freeze_long_lived() -> None:
    """Collect, then freeze everything alive: called when the models have changed."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
