"""``python -m bench.profile [--repository DIR] [--model lenet5] [--payload v2-binary] [--against CHECKOUT]``.

Where a saturated server's CPU goes, per request. The server starts on ``DIR`` with its defaults
(``--set KEY=VALUE`` changes a ``CNNSERVE_*`` setting), a closed-loop load of ``--concurrency``
clients runs for ``--seconds`` with every answer checked, and its CPU per request is read from
``/proc`` (every thread of every process). A second load of the same length runs under py-spy,
which samples every process of the server (``--subprocesses``, ``--nonblocking``: the samples
do not stop it). Each sample goes to the part of a request its innermost known frame belongs
to (:data:`PARTS`), and a part's share of the samples times the CPU per request is what it costs.

``--payload grpc`` (unary ``ModelInfer``) and ``grpc-stream`` (``ModelStreamInfer``) load the server's
gRPC port instead (each server gets a free one), with the same inputs as ``v2-binary``.

``--against CHECKOUT`` profiles another checkout of the project (``git worktree add ../old REV``)
the same way, for a before/after table: both servers run at once (the idle one costs nothing),
and the CPU loads alternate between them for ``--rounds`` rounds, since whichever is measured
first on a shared machine reads up to a fifth slower; each column has the median of its rounds,
split by part by one py-spy load each. The closing notes of issues 16 and 21 compare checkouts so.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .load import GRPC_PAYLOADS, drive, load_for, served
from .loadgen import LoadResult
from .machine import describe_machine, load_average
from .overhead import bare_session, model_file
from .payloads import PAYLOADS
from .server import ROOT, ServerProcess, free_port

__all__ = ["PARTS", "Profile", "attribute", "main", "profiles", "table"]

# The parts of a request, each by the frames that belong to it (py-spy's "function (file:line)").
# A sample goes to the first part, in this order, that its innermost matching frame names: the
# innermost known frame is the work itself, what calls it is how the request got there.
# Paths match the service's layout before and after it was split by part (service/http/..., issue 21),
# so that ``--against`` an older checkout attributes its samples the same way.
_SERVICE = r"service/(?:\w+/)*"
PARTS: tuple[tuple[str, str], ...] = (
    ("session.run", r"onnxruntime"),
    ("JSON and pydantic", r"pydantic|/json/"),
    ("numpy", r"numpy"),
    ("thread hand-off", r"concurrent/futures|threading\.py|to_thread|run_in_threadpool"),
    ("batching", _SERVICE + r"batching\.py"),
    ("endpoint (service code)", _SERVICE + r"(?!middleware|server|fastpath|inference|app|deps|supervisor)\w+\.py"),
    ("inference route dispatch", _SERVICE + r"(?:fastpath|inference)\.py"),
    (
        "routing, dependencies, middleware",
        r"starlette/|fastapi/|contextlib|" + _SERVICE + r"(?:middleware|deps|app)\.py",
    ),
    ("metrics", r"prometheus_client"),
    ("logging", r"logging/"),
    ("HTTP protocol", r"uvicorn/|httptools|h11|" + _SERVICE + r"server\.py"),
    ("gRPC protocol", r"grpc/_cython|grpc/aio/|/grpc/_\w+\.py|cygrpc|google/protobuf"),
    ("event loop and socket I/O", r"asyncio|uvloop|" + _SERVICE + r"(?:supervisor|__main__)\.py"),
)
OTHER = "other (native code, garbage collection)"
_UNBOUNDED = 10**9  # requests: the loads stop on time
_PATTERNS = [(name, re.compile(pattern)) for name, pattern in PARTS]


@dataclass(frozen=True)
class Profile:
    """One server under load: its throughput, CPU per request and that CPU split by part (microseconds)."""

    label: str
    requests_per_s: float
    cpu_us: float
    parts_us: dict[str, float]
    samples: int


def attribute(raw: str) -> Counter[str]:
    """Samples per part of py-spy's raw output (a line per distinct stack, root first, then its count)."""
    counts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        counts[_part_of(stack.split(";"))] += int(count)
    return counts


def _part_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, pattern in _PATTERNS:
            if pattern.search(frame):
                return name
    return OTHER


def cpu_per_request(server: ServerProcess, load: Any, concurrency: int, seconds: float) -> tuple[float, float]:
    """One checked closed-loop load: the server's CPU per request (µs) and its requests/s."""
    cpu_before = sum(server.thread_cpu_s().values())
    result = _checked(drive(server, load, concurrency, _UNBOUNDED, seconds))
    return (sum(server.thread_cpu_s().values()) - cpu_before) / served(result) * 1e6, result.throughput


def split(server: ServerProcess, load: Any, concurrency: int, seconds: float) -> Counter[str]:
    """py-spy's samples of every process of the server under one more load, by part."""
    with tempfile.TemporaryDirectory() as work:
        raw = Path(work) / "stacks.txt"
        command = [_py_spy(), "record", "--pid", str(server.process.pid), "--subprocesses", "--nonblocking"]
        command += ["--rate", "250", "--format", "raw", "--output", str(raw), "--duration", str(max(1, round(seconds)))]
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)  # py-spy attaches to every process first
        _checked(drive(server, load, concurrency, _UNBOUNDED, seconds + 1))
        _, error = spy.communicate(timeout=seconds + 60)
        if spy.returncode != 0 or not raw.exists():
            raise RuntimeError(f"py-spy failed ({spy.returncode}): {error.decode(errors='replace')[-500:]}")
        counts = attribute(raw.read_text())
    if not counts:
        raise RuntimeError("py-spy recorded no sample of the server")
    return counts


def profiles(
    servers: list[tuple[ServerProcess, str]], model: str, payload: str, concurrency: int, seconds: float, rounds: int
) -> list[Profile]:
    """Each ready server's CPU per request, the median of ``rounds`` loads taken in turn, split by part."""
    card, path = model_file(servers[0][0].repository, model)  # every server serves the same repository
    load = load_for(model, payload, card, bare_session(path), size=16)
    readings: list[list[tuple[float, float]]] = [[] for _ in servers]
    for _ in range(rounds):
        for (server, _), taken in zip(servers, readings, strict=True):
            taken.append(cpu_per_request(server, load, concurrency, seconds))
    out = []
    for (server, label), taken in zip(servers, readings, strict=True):
        counts = split(server, load, concurrency, seconds)
        cpu_us = statistics.median(cpu for cpu, _ in taken)
        total = sum(counts.values())
        parts = {name: counts[name] / total * cpu_us for name in [*(n for n, _ in PARTS), OTHER]}
        out.append(Profile(label, statistics.median(rate for _, rate in taken), cpu_us, parts, total))
    return out


def _checked(result: LoadResult) -> LoadResult:
    if result.lost or result.wrong or not result.ok:
        raise RuntimeError(f"{result.lost} requests lost, {result.wrong} answers wrong of {result.ok} under load")
    return result


def _py_spy() -> str:
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("error: py-spy is not installed: pip install -e '.[profile]'")
    return found


def table(profiles: list[Profile]) -> str:
    """Markdown: microseconds of server CPU per request by part, a column per profile."""
    lines = [
        "| part (µs of server CPU per request) | " + " | ".join(p.label for p in profiles) + " |",
        "|---" + "|---:" * len(profiles) + "|",
    ]
    for name in profiles[0].parts_us:
        lines.append(f"| {name} | " + " | ".join(f"{p.parts_us[name]:.0f}" for p in profiles) + " |")
    lines.append("| **in all** | " + " | ".join(f"**{p.cpu_us:.0f}**" for p in profiles) + " |")
    lines.append("| requests/s | " + " | ".join(f"{p.requests_per_s:,.0f}" for p in profiles) + " |")
    lines.append("| samples | " + " | ".join(f"{p.samples:,}" for p in profiles) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n", 1)[1])
    p.add_argument("--repository", type=Path, default=Path("model_repository"))
    p.add_argument("--model", default="lenet5")
    p.add_argument("--payload", choices=[*sorted(PAYLOADS), *GRPC_PAYLOADS], default="v2-binary")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--seconds", type=float, default=10.0, help="each of the two loads (default: 10)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--against", type=Path, default=None, help="another checkout to profile the same way")
    p.add_argument("--rounds", type=int, default=3, help="CPU loads per checkout, taken in turn (default: 3)")
    args = p.parse_args(argv)
    settings = dict(s.split("=", 1) for s in args.settings)
    settings.setdefault("variants", "fp32")
    machine = describe_machine()
    print(f"{args.model}, {args.payload}, concurrency {args.concurrency}, settings {settings}")
    print(f"{machine.cpu_model}, {machine.usable_cpus} usable CPUs, load {machine.load_average}\n")
    checkouts = [(ROOT, machine, "")]  # this checkout's commit is the machine's
    if args.against is not None:
        against = args.against.resolve()
        checkouts.append((against, describe_machine(against), " (--against)"))
    with contextlib.ExitStack() as stack:
        servers = []
        for root, checkout, role in checkouts:
            label = checkout.git_commit + (" (modified)" if checkout.git_dirty else "") + role
            own = {**settings, "grpc_port": free_port()} if args.payload in GRPC_PAYLOADS else settings
            server = stack.enter_context(ServerProcess(args.repository.resolve(), settings=own, root=root, name=label))
            server.wait_ready(expected={args.model})
            servers.append((server, label))
        measured = profiles(servers, args.model, args.payload, args.concurrency, args.seconds, args.rounds)
    print(table(measured))
    if len(measured) == 2:
        print(f"\nCPU per request, this checkout / --against: {measured[0].cpu_us / measured[1].cpu_us:.3f}")
    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
