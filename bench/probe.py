"""A liveness prober in its own process: ``python -m bench.probe --port P --path /healthz``.

It sends a GET every ``--interval`` seconds on one keep-alive connection until a line (or
end of file) arrives on stdin, then prints one JSON object: the latencies in seconds and the
statuses. A separate process, so that the prober's timing is not delayed by the load
generator's event loop: what it measures is the server's responsiveness.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence

from .loadgen import HttpRequest, SyncConnection

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.probe", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/healthz")
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--max-seconds", type=float, default=120.0, help="stop by itself after this long")
    args = parser.parse_args(argv)

    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    request = HttpRequest.get(args.path).encode(args.host, args.port)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    deadline = time.monotonic() + args.max_seconds
    print("ready", flush=True)
    with SyncConnection(args.host, args.port) as connection:
        while not stop.is_set() and time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                response = connection.send(request)
            except OSError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                stop.wait(args.interval)
                continue
            latencies.append(time.perf_counter() - start)
            statuses[response.status] = statuses.get(response.status, 0) + 1
            stop.wait(args.interval)
    json.dump({"latencies": latencies, "statuses": statuses, "errors": errors[:10]}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
