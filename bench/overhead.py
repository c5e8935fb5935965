"""2. Server overhead: ``/predict`` end to end minus the bare ``session.run``, at concurrency 1.

For each model, the real server runs in a subprocess; this process holds a bare ONNX Runtime
session on the same file with the server's session options. Requests go one at a time over a
keep-alive loopback connection (a raw-socket client: its CPU time per request is reported),
and after every request the bare session runs the same prepared tensor once, so both are
measured under the same conditions. Payloads: the tensor as JSON, and real photos (224 x 224
PNG and JPEG, a 12-megapixel JPEG). ``/healthz`` on the same connection is the floor: what any
request costs through HTTP, uvicorn and FastAPI.

The server's own ``timings`` (decode, queue, inference, handler total) split the overhead:
``decode_ms`` is the preprocessing (body read, decode, resize, normalise), and what is left
outside the handler is HTTP parsing, routing, JSON encoding, the loopback and the client.

Two servers are compared: the card's batching settings (a request waits up to
``max_queue_delay_microseconds`` for others to batch with) and no queue delay.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import BenchConfig
from .load import servers
from .loadgen import HttpRequest, SyncConnection
from .payloads import IMAGE_KINDS, image_payload, photo, prepare, tensor_payload
from .server import HOST
from .stats import Distribution, Target, median

__all__ = ["OverheadResult", "OverheadRow", "run"]

log = logging.getLogger(__name__)

TARGET_TENSOR_OVERHEAD_MS = 0.5
TARGET_PREPROCESS_MS = {"jpeg224": 3.0, "jpeg12mp": 25.0}
SERVERS = {"card": {}, "no-delay": {"max_queue_delay_microseconds": 0}}


@dataclass
class OverheadRow:
    model: str
    server: str  # "card" (its batching settings) or "no-delay"
    kind: str  # tensor, png224, jpeg224, jpeg12mp, healthz
    description: str
    body_bytes: int
    e2e_ms: Distribution
    bare_ms: Distribution
    decode_ms: Distribution | None = None
    queue_ms: Distribution | None = None
    inference_ms: Distribution | None = None
    handler_ms: Distribution | None = None
    client_cpu_ms: float = math.nan
    errors: dict[int, int] = field(default_factory=dict)

    @property
    def overhead_p50_ms(self) -> float:
        return self.e2e_ms.p50 - self.bare_ms.p50

    @property
    def overhead_p99_ms(self) -> float:
        return self.e2e_ms.p99 - self.bare_ms.p99

    @property
    def outside_handler_p50_ms(self) -> float:
        return self.e2e_ms.p50 - self.handler_ms.p50 if self.handler_ms else math.nan

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            overhead_p50_ms=self.overhead_p50_ms,
            overhead_p99_ms=self.overhead_p99_ms,
            outside_handler_p50_ms=self.outside_handler_p50_ms,
        )
        return data


@dataclass
class OverheadResult:
    rows: list[OverheadRow] = field(default_factory=list)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    def row(self, model: str, kind: str, server: str = "card") -> OverheadRow | None:
        return next((r for r in self.rows if (r.model, r.kind, r.server) == (model, kind, server)), None)

    def targets(self, model: str = "lenet5") -> list[Target]:
        out = []
        tensor = self.row(model, "tensor")
        value = tensor.overhead_p50_ms if tensor else math.nan
        why = "" if tensor else (self.error or f"{model} not measured")
        if tensor and value > TARGET_TENSOR_OVERHEAD_MS:
            why = _overhead_why(tensor, self.row(model, "healthz"), self.row(model, "tensor", "no-delay"))
        out.append(
            Target(
                "overhead",
                f"{model}: /predict tensor p50 overhead over session.run",
                value,
                TARGET_TENSOR_OVERHEAD_MS,
                "<=",
                "ms",
                why,
            )
        )
        for kind, bound in TARGET_PREPROCESS_MS.items():
            rows = [r for r in self.rows if r.kind == kind and r.server == "card" and r.decode_ms]
            worst = max(rows, key=lambda r: r.decode_ms.p50) if rows else None  # type: ignore[union-attr]
            value = worst.decode_ms.p50 if worst else math.nan  # type: ignore[union-attr]
            label = "224 x 224 JPEG" if kind == "jpeg224" else "12-megapixel JPEG"
            out.append(
                Target(
                    "overhead",
                    f"preprocessing of a {label} (server decode_ms p50)",
                    value,
                    bound,
                    "<=",
                    "ms",
                    "" if worst else (self.error or "not measured"),
                    measured_on=worst.model if worst else "",
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [r.to_dict() for r in self.rows],
            "settings": self.settings,
            "seconds": self.seconds,
            "error": self.error,
        }


def _overhead_why(tensor: OverheadRow, healthz: OverheadRow | None, no_delay: OverheadRow | None) -> str:
    parts = []
    if tensor.queue_ms and tensor.queue_ms.p50 > 0.1:
        parts.append(
            f"{tensor.queue_ms.p50:.2f} ms waiting in the batch queue (the card's max_queue_delay_microseconds)"
        )
    if tensor.decode_ms:
        parts.append(f"{tensor.decode_ms.p50:.2f} ms reading and converting the JSON tensor")
    if tensor.handler_ms:
        parts.append(
            f"{tensor.outside_handler_p50_ms:.2f} ms outside the handler (HTTP, routing, response encoding, "
            f"loopback, client)"
        )
    if healthz:
        parts.append(f"/healthz alone takes {healthz.e2e_ms.p50:.2f} ms")
    if no_delay:
        parts.append(f"without the queue delay the overhead is {no_delay.overhead_p50_ms:.2f} ms")
    return "p50 split: " + "; ".join(parts)


def bare_session(path: Path):
    """A session with the server's options (``service.core.runtime``: all optimisations, default threads)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def model_file(repository: Path, model: str, precision: str = "fp32") -> tuple[Any, Path]:
    """The card and the ``precision`` file of the latest version of ``model``."""
    from repository import Repository

    repo = Repository(repository)
    card = repo.load_card(model)
    return card, repo.variant_path(model, card.latest_version, precision)


def _payloads(model: str, card: Any) -> tuple[np.ndarray, dict[str, Any]]:
    tensor = prepare(photo("224"), card.input)
    payloads = {"tensor": tensor_payload(model, tensor)}
    payloads.update({kind: image_payload(model, kind) for kind in IMAGE_KINDS})
    return tensor, payloads


def measure_model(model: str, config: BenchConfig, repository: Path, log_dir: Path) -> tuple[list[OverheadRow], dict]:
    card, path = model_file(repository, model)
    tensor, payloads = _payloads(model, card)
    session = bare_session(path)
    feed = {session.get_inputs()[0].name: tensor}
    settings = {label: {"variants": "fp32", **extra} for label, extra in SERVERS.items()}
    cases: list[tuple[str, str, HttpRequest, str, int]] = []
    for label in settings:
        kinds = list(payloads) if label == "card" else ["tensor"]
        for kind in kinds:
            p = payloads[kind]
            cases.append((label, kind, p.request, p.description, p.bytes))
        cases.append((label, "healthz", HttpRequest.get("/healthz"), "GET /healthz", 0))
    samples = {(label, kind): _Samples() for label, kind, *_ in cases}
    with servers(repository, settings, log_dir, f"overhead-{model}", config, {model}) as started:
        connections = {label: SyncConnection(HOST, s.port) for label, s in started.items()}
        encoded = {(label, kind): request.encode(HOST, started[label].port) for label, kind, request, *_ in cases}
        try:
            for (label, _kind), data in encoded.items():  # warm-up: connections, code paths, caches
                for _ in range(3):
                    connections[label].send(data)
                    session.run(None, feed)
            rounds = max(2, config.rounds)
            per_turn = max(1, math.ceil(config.overhead_requests / rounds))
            deadline = time.perf_counter() + config.overhead_seconds * len(cases)
            for r in range(rounds):
                order = cases if r % 2 == 0 else cases[::-1]
                for label, kind, *_ in order:
                    _turn(connections[label], encoded[(label, kind)], session, feed, per_turn, samples[(label, kind)])
                if time.perf_counter() > deadline and r >= 1:
                    break
        finally:
            for connection in connections.values():
                connection.close()
    rows = [
        samples[(label, kind)].row(model, label, kind, description, size) for label, kind, _, description, size in cases
    ]
    return rows, settings


@dataclass
class _Samples:
    e2e: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    timings: list[dict[str, float]] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)

    def row(self, model: str, server: str, kind: str, description: str, size: int) -> OverheadRow:
        def dist(key: str) -> Distribution | None:
            values = [t[key] for t in self.timings if key in t]
            return Distribution.of(values) if values else None

        return OverheadRow(
            model,
            server,
            kind,
            description,
            size,
            Distribution.of(self.e2e).scaled(1e3),
            Distribution.of(self.bare).scaled(1e3),
            dist("decode_ms"),
            dist("queue_ms"),
            dist("inference_ms"),
            dist("total_ms"),
            median(self.client_cpu) * 1e3,
            dict(self.errors),
        )


def _turn(connection: SyncConnection, data: bytes, session: Any, feed: dict, n: int, samples: _Samples) -> None:
    clock, cpu = time.perf_counter, time.process_time
    for _ in range(n):
        cpu0 = cpu()
        start = clock()
        response = connection.send(data)
        end = clock()
        samples.client_cpu.append(cpu() - cpu0)
        if response.status != 200:
            samples.errors[response.status] = samples.errors.get(response.status, 0) + 1
        else:
            samples.e2e.append(end - start)
            if response.body.startswith(b'{"model"'):
                samples.timings.append(response.json().get("timings", {}))
        start = clock()
        session.run(None, feed)
        samples.bare.append(clock() - start)


def run(config: BenchConfig, repository: Path, log_dir: Path) -> OverheadResult:
    result = OverheadResult()
    start = time.perf_counter()
    for model in config.overhead_models:
        log.info("overhead: %s", model)
        try:
            rows, settings = measure_model(model, config, repository, log_dir)
        except Exception as exc:  # a server that fails to start must not lose the other benchmarks
            log.exception("overhead: %s failed", model)
            result.error = f"{model}: {type(exc).__name__}: {exc}"
            continue
        result.rows.extend(rows)
        result.settings = settings
        for row in rows:
            log.info(
                "overhead: %s %s %s e2e p50 %.3f ms bare %.3f ms overhead %.3f ms",
                model,
                row.server,
                row.kind,
                row.e2e_ms.p50,
                row.bare_ms.p50,
                row.overhead_p50_ms,
            )
    result.seconds = time.perf_counter() - start
    return result
