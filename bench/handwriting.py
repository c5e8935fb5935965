"""8. Handwriting: every digit model's top-1 on digits drawn as people draw them, through ``/predict``.

The drawings come from :mod:`export.handwriting` (pen strokes with a hand's wobble, slant, size,
position and pen width; white on black as on the page's canvas, and dark ink on paper as in a photo
of a note), ``config.handwriting_per_digit`` of each digit in each polarity, the same every run. Each
is sent to the running service as a PNG, as a person's image is, and answered with the model's own
preprocessing (a digit model's card: ``input.digits``, the data set's picture of a digit). Targets
(issue 22): LeNet-5 at least 95% in each polarity, every default network at least 90%. The drawings
are a check set: nothing trains on them.
"""

from __future__ import annotations

import io
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from export.handwriting import POLARITIES, handwritten_digits

from .config import BenchConfig
from .loadgen import SyncConnection
from .payloads import predict_request
from .server import HOST, ServerProcess
from .stats import Target

__all__ = ["HandwritingResult", "HandwritingRow", "run"]

log = logging.getLogger(__name__)

DIGITS = [str(d) for d in range(10)]
BOUNDS = {"lenet5": 95.0}  # top-1 percent in each polarity, at least
DEFAULT_BOUND = 90.0


@dataclass
class HandwritingRow:
    model: str
    polarity: str
    top1: float  # percent
    count: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class HandwritingResult:
    rows: list[HandwritingRow] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def targets(self) -> list[Target]:
        out = []
        for model in dict.fromkeys(r.model for r in self.rows):
            worst = min((r for r in self.rows if r.model == model), key=lambda r: r.top1)
            bound = BOUNDS.get(model, DEFAULT_BOUND)
            name = f"{model}: top-1 on the handwriting check set, worse polarity ({worst.polarity})"
            out.append(Target("handwriting", name, worst.top1, bound, ">=", "%"))
        if not out:
            out.append(
                Target("handwriting", "handwriting check set", math.nan, DEFAULT_BOUND, ">=", "%", self.error or "")
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [r.to_dict() for r in self.rows], "seconds": self.seconds, "error": self.error}


def digit_models(repository: Path) -> list[str]:
    """The repository's models whose labels are the ten digits."""
    from repository import Repository

    repo = Repository(repository)
    return [name for name in repo.names() if repo.load_card(name).labels == DIGITS]


def run(config: BenchConfig, repository: Path, log_dir: Path) -> HandwritingResult:
    result = HandwritingResult()
    start = time.perf_counter()
    drawings = handwritten_digits(per_digit=config.handwriting_per_digit, seed=config.seed)
    bodies = []
    for drawing in drawings:
        buffer = io.BytesIO()
        drawing.image.save(buffer, format="PNG")
        bodies.append((drawing.polarity, drawing.label, buffer.getvalue()))
    server = ServerProcess(repository, settings={"variants": "fp32"}, log_path=log_dir / "handwriting.log")
    try:
        with server:
            server.wait_ready(config.server_start_timeout_s)
            with SyncConnection(HOST, server.port) as connection:
                for model in digit_models(repository):
                    result.rows += _measure(connection, model, bodies)
    except Exception as exc:  # a failed run is reported, not raised: the other benchmarks' results stay
        log.exception("handwriting failed")
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - start
    return result


def _measure(connection: SyncConnection, model: str, bodies: list[tuple[str, int, bytes]]) -> list[HandwritingRow]:
    right = dict.fromkeys(POLARITIES, 0)
    count = dict.fromkeys(POLARITIES, 0)
    for polarity, label, body in bodies:
        response = connection.send(predict_request(model, body, "image/png"))
        if response.status != 200:
            raise RuntimeError(f"{model}: /predict answered {response.status}: {response.body[:200]!r}")
        top = response.json()["predictions"][0]["top_k"][0]["index"]
        right[polarity] += top == label
        count[polarity] += 1
    rows = [HandwritingRow(model, p, round(100.0 * right[p] / count[p], 2), count[p]) for p in POLARITIES if count[p]]
    for row in rows:
        log.info("handwriting: %s %s: %.1f%% of %d", model, row.polarity, row.top1, row.count)
    return rows
