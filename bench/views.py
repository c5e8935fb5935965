"""``python -m bench.views --repository DIR [--models lenet5,resnet50] [--repeat 20]``: what each view costs.

Starts the real server on ``DIR`` (:class:`bench.server.ServerProcess`), sends each model one
handwritten digit (scikit-learn's first, as a PNG) through ``/predict`` (for scale) and each view
with its defaults, one request at a time over loopback, and prints a Markdown table: the first
call (the activation view opens its layer session then), the median and the 90th percentile of
the next ``--repeat`` calls, and the answer's size. docs/service.md keeps the table.
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import time
from pathlib import Path

import numpy as np

from .loadgen import HttpRequest, SyncConnection
from .machine import describe_machine, load_average
from .server import HOST, ServerProcess

__all__ = ["main", "measure"]

VIEWS = {
    "predict": lambda name, png: HttpRequest("POST", f"/models/{name}/predict", png, {"Content-Type": "image/png"}),
    "activations": lambda name, png: HttpRequest(
        "POST", f"/models/{name}/activations", png, {"Content-Type": "image/png"}
    ),
    "filters": lambda name, png: HttpRequest.get(f"/models/{name}/filters"),
    "occlusion": lambda name, png: HttpRequest("POST", f"/models/{name}/occlusion", png, {"Content-Type": "image/png"}),
}


def _digit_png() -> bytes:
    from PIL import Image
    from sklearn.datasets import load_digits

    buffer = io.BytesIO()
    Image.fromarray((load_digits().images[0] * 255 / 16).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def measure(connection: SyncConnection, request: bytes, repeat: int) -> dict[str, float]:
    """First call, median and p90 of ``repeat`` more (milliseconds), and the answer's bytes."""
    times, size = [], 0
    for _ in range(repeat + 1):
        start = time.perf_counter()
        response = connection.send(request)
        times.append((time.perf_counter() - start) * 1e3)
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {response.body[:300]!r}")
        size = len(response.body)
    rest = sorted(times[1:])
    return {
        "first_ms": times[0],
        "median_ms": statistics.median(rest),
        "p90_ms": rest[math.ceil(0.9 * len(rest)) - 1],  # nearest rank
        "bytes": size,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.views", description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument("--repository", type=Path, required=True)
    parser.add_argument("--models", default="lenet5,resnet50")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    server = ServerProcess(args.repository, settings={"poll_interval_s": 0, "variants": "fp32", "access_log": False})
    server.start()
    try:
        server.wait_ready(expected=set(names))
        connection = SyncConnection(HOST, server.port, timeout=120)
        png = _digit_png()
        m = describe_machine()
        runtime = m.versions["onnxruntime"]
        print(f"{m.cpu_model}, {m.usable_cpus} usable CPUs, load {m.load_average}, onnxruntime {runtime}\n")
        print("| model | view | first call ms | median ms | p90 ms | answer bytes |")
        print("|---|---|---:|---:|---:|---:|")
        for name in names:
            for view, make in VIEWS.items():
                cost = measure(connection, make(name, png).encode(HOST, server.port), args.repeat)
                print(
                    f"| {name} | {view} | {cost['first_ms']:.1f} | {cost['median_ms']:.1f} | {cost['p90_ms']:.1f} "
                    f"| {cost['bytes']:,} |"
                )
        print(f"\nload average at the end: {load_average()}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
