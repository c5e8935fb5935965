"""7. Protocols: the Open Inference Protocol over gRPC beside HTTP v2 binary, against the same server.

For each of ``config.protocol_loads`` (a model and a concurrency) one server runs with the service's
defaults and a gRPC port; the load alternates round by round between HTTP v2 binary requests
(:mod:`bench.loadgen`), unary ``ModelInfer`` calls with raw contents and ``ModelStreamInfer``
messages (:mod:`bench.grpc_load`), the same inputs with the top class back, every answer checked.
Targets (issue 24): gRPC requests/s at least 1.0x HTTP's for ResNet-50 and 0.8x for LeNet-5, p99 at
most 1.2x HTTP's. The clients share the machine's cores with the server; each one's CPU per request
is reported beside the server's.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .batching import answers_target
from .config import BenchConfig
from .load import ModeResult, Samples, load_for, run_once, servers, summarize
from .overhead import bare_session, model_file
from .server import free_port
from .stats import Target

__all__ = ["PROTOCOLS", "ProtocolRow", "ProtocolsResult", "run"]

log = logging.getLogger(__name__)

# protocol -> the load's payload
PROTOCOLS = {"HTTP v2 binary": "v2-binary", "gRPC": "grpc", "gRPC stream": "grpc-stream"}
BASELINE = "HTTP v2 binary"
THROUGHPUT_BOUNDS = {"resnet50": 1.0, "lenet5": 0.8}  # gRPC requests/s over HTTP v2 binary's, at least
P99_BOUND = 1.2  # gRPC p99 over HTTP's, at most


@dataclass
class ProtocolRow:
    model: str
    concurrency: int
    protocol: str
    result: ModeResult

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ProtocolsResult:
    rows: list[ProtocolRow] = field(default_factory=list)
    seconds: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)

    def row(self, model: str, protocol: str) -> ProtocolRow | None:
        return next((r for r in self.rows if r.model == model and r.protocol == protocol), None)

    def ratio(self, model: str, protocol: str, metric: str) -> float:
        """``metric`` ("throughput" or "p99") of ``protocol`` over HTTP v2 binary's, for ``model``."""
        row, base = self.row(model, protocol), self.row(model, BASELINE)
        if row is None or base is None:
            return math.nan
        if metric == "throughput":
            return row.result.throughput / base.result.throughput if base.result.throughput > 0 else math.nan
        return row.result.latency_ms.p99 / base.result.latency_ms.p99 if base.result.latency_ms.p99 > 0 else math.nan

    def targets(self) -> list[Target]:
        out = []
        for model, bound in THROUGHPUT_BOUNDS.items():
            base = self.row(model, BASELINE)
            where = f"{model} at concurrency {base.concurrency}" if base else model
            why = self.errors.get(model, "")
            out.append(
                Target(
                    "protocols",
                    f"gRPC requests/s vs HTTP v2 binary, {where}",
                    self.ratio(model, "gRPC", "throughput"),
                    bound,
                    ">=",
                    "x",
                    why or self._cpu_why(model),
                )
            )
            out.append(
                Target(
                    "protocols",
                    f"gRPC p99 vs HTTP v2 binary, {where}",
                    self.ratio(model, "gRPC", "p99"),
                    P99_BOUND,
                    "<=",
                    "x",
                    why,
                )
            )
        out.append(answers_target("protocols", [r.result for r in self.rows], self.errors))
        return out

    def _cpu_why(self, model: str) -> str:
        """What a gRPC request costs the server and the client against an HTTP one (the cause of a miss)."""
        row, base = self.row(model, "gRPC"), self.row(model, BASELINE)
        if row is None or base is None:
            return "not measured"
        grpc_cpu, http_cpu = row.result, base.result
        return (
            f"CPU per request: server {grpc_cpu.server_cpu_ms:.3f} ms over gRPC, {http_cpu.server_cpu_ms:.3f} over "
            f"HTTP; client {grpc_cpu.client_cpu_ms:.3f} ms and {http_cpu.client_cpu_ms:.3f}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [r.to_dict() for r in self.rows], "seconds": self.seconds, "errors": self.errors}


def measure(model: str, concurrency: int, config: BenchConfig, repository: Path, log_dir: Path) -> list[ProtocolRow]:
    card, path = model_file(repository, model)
    session = bare_session(path)
    loads = {name: load_for(model, payload, card, session, config.answers) for name, payload in PROTOCOLS.items()}
    samples = {name: Samples() for name in PROTOCOLS}
    settings = {"grpc": {"variants": "fp32", "grpc_port": free_port()}}
    with servers(repository, settings, log_dir, f"protocols-{model}", config, {model}) as started:
        server = started["grpc"]
        for r in range(config.batching_rounds):
            order = list(PROTOCOLS) if r % 2 == 0 else list(PROTOCOLS)[::-1]
            for name in order:
                run_once(server, loads[name], concurrency, config, samples[name])
                time.sleep(0.1)
    rows = [ProtocolRow(model, concurrency, name, summarize(samples[name])) for name in PROTOCOLS]
    for row in rows:
        log.info(
            "protocols: %s c=%d %s: %.0f/s, p99 %.1f ms, CPU/request %.3f ms server, %.3f client, %d lost, %d wrong",
            model,
            concurrency,
            row.protocol,
            row.result.throughput,
            row.result.latency_ms.p99,
            row.result.server_cpu_ms,
            row.result.client_cpu_ms,
            row.result.lost,
            row.result.wrong,
        )
    return rows


def run(config: BenchConfig, repository: Path, log_dir: Path) -> ProtocolsResult:
    result = ProtocolsResult()
    start = time.perf_counter()
    for model, concurrency in config.protocol_loads:
        log.info("protocols: %s at concurrency %d over %s", model, concurrency, ", ".join(PROTOCOLS))
        try:
            result.rows += measure(model, concurrency, config, repository, log_dir)
        except Exception as exc:  # one model failing must not lose the others
            log.exception("protocols: %s failed", model)
            result.errors[model] = f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - start
    return result
