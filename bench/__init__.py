"""``python -m bench``: how fast cnnserve is, measured side by side, and the targets to reach.

Every number that matters is a ratio of two configurations measured in the same run, their
repetitions interleaved (A B A B ...), and summarised by medians, so that a machine shared
with other work shifts both sides alike. The benchmarks, one module each:

* :mod:`bench.runtime` - ONNX Runtime vs PyTorch eager per network (batch 1 latency, batch 32 throughput);
* :mod:`bench.overhead` - ``/predict`` end to end minus the bare ``session.run``, and image preprocessing;
* :mod:`bench.batching` - throughput and latency under concurrency, dynamic batching on vs off vs the ceiling;
* :mod:`bench.int8` - INT8 variants vs float32: speed and test accuracy;
* :mod:`bench.startup` - process start to every model ready.

The server is always the real one (``python -m service``) in a subprocess, measured over
loopback HTTP; this package never imports ``service``. :mod:`bench.report` writes
``docs/benchmarks.md`` with tables, PNG plots and the machine description.
"""

__all__ = ["BenchConfig"]

from .config import BenchConfig
