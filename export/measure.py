"""ONNX Runtime on an exported file: parity with PyTorch, the test accuracy again, a rough latency.

:func:`verify_parity` compares ONNX Runtime with PyTorch on random and real inputs against the
bound of :class:`~export.onnx_export.ExportOptions`; :func:`compare_sessions` compares a variant
with float32 (informative, no bound); :func:`evaluate_onnx` measures the test accuracy through
ONNX Runtime and :func:`benchmark` the build's rough CPU latency, each as the card records it
(:mod:`repository.card`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from repository.card import AccuracyRecord, Agreement, Latencies, ParityRecord

from .onnx_export import INPUT_NAME, ExportError, ExportOptions, serving_copy

__all__ = ["benchmark", "compare_sessions", "evaluate_onnx", "make_session", "run_session", "verify_parity"]


def make_session(path: str | os.PathLike[str] | bytes, threads: int | None = None) -> Any:
    """A CPU ONNX Runtime session of a file (or a serialized model; ``threads``: intra-op threads, ``None``: ORT's)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # Build machines are shared: a spinning thread pool waiting for a busy core costs more than it saves.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    model = path if isinstance(path, bytes) else os.fspath(path)
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def run_session(session: Any, x: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Logits and probabilities for ``x`` (N, C, H, W), in batches: the session's first output and its last
    (``logits`` and ``probabilities`` of the build's files; an imported file's scores and probabilities)."""
    feed = session.get_inputs()[0].name
    logits, probs = [], []
    for start in range(0, len(x), batch_size):
        out = session.run(None, {feed: np.ascontiguousarray(x[start : start + batch_size], np.float32)})
        logits.append(out[0])
        probs.append(out[-1])
    return np.concatenate(logits), np.concatenate(probs)


def _torch_logits(net: nn.Module, x: np.ndarray, batch_size: int) -> np.ndarray:
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            out.append(net(torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size]))).float().numpy())
    return np.concatenate(out)


def verify_parity(
    model: nn.Module,
    session: Any,
    input_shape: Sequence[int],
    real_inputs: np.ndarray | None = None,
    *,
    options: ExportOptions = ExportOptions(),
    net: nn.Module | None = None,
) -> ParityRecord:
    """ONNX Runtime vs PyTorch on random inputs and (if given) real ones.

    Records, per input kind, the largest |logit difference|, the top-1 agreement and how many
    inputs were compared, and whether the float32 bounds hold (``passed``). ``net`` is the
    already prepared :func:`serving_copy`, if the caller has one.
    """
    net = net if net is not None else serving_copy(model)
    rng = np.random.default_rng(options.seed)
    kinds = {"random": rng.standard_normal((options.random_inputs, *input_shape), dtype=np.float32)}
    if real_inputs is not None and len(real_inputs):
        kinds["real"] = np.asarray(real_inputs[: options.real_inputs], dtype=np.float32)
    agreements: dict[str, Agreement] = {}
    largest = 0.0
    for kind, x in kinds.items():
        diffs, matches = [], []
        for batch_size in options.parity_batch_sizes:
            ref = _torch_logits(net, x, batch_size)
            largest = max(largest, float(np.max(np.abs(ref))))
            got, probs = run_session(session, x, batch_size)
            diffs.append(float(np.max(np.abs(got - ref))))
            matches.append(float(np.mean(got.argmax(1) == ref.argmax(1))))
            if not np.allclose(probs.sum(1), 1.0, atol=1e-4):
                raise ExportError("the exported probabilities do not sum to 1: the softmax is not over the classes")
        agreements[kind] = Agreement(count=len(x), max_abs_diff=max(diffs), top1_agreement=min(matches))
    worst = max(a.max_abs_diff for a in agreements.values())
    agree = min(a.top1_agreement for a in agreements.values())
    tolerance = max(options.atol, options.rtol * largest)
    return ParityRecord(
        atol=options.atol,
        rtol=options.rtol,
        **agreements,
        batch_sizes=list(options.parity_batch_sizes),
        max_abs_diff=worst,
        top1_agreement=agree,
        max_abs_logit=largest,
        tolerance=tolerance,
        passed=worst <= tolerance and agree == 1.0,
    )


def compare_sessions(reference: Any, candidate: Any, x: np.ndarray, batch_size: int = 32) -> Agreement:
    """How far a variant's logits are from the float32 model's on ``x`` (informative, no bound)."""
    ref, _ = run_session(reference, x, batch_size)
    got, _ = run_session(candidate, x, batch_size)
    return Agreement(
        count=len(x),
        max_abs_diff=float(np.max(np.abs(got.astype(np.float32) - ref))),
        top1_agreement=float(np.mean(got.argmax(1) == ref.argmax(1))),
    )


def evaluate_onnx(session: Any, images: np.ndarray, targets: np.ndarray, batch_size: int = 64) -> AccuracyRecord:
    """Top-1 (and top-5, with at least 5 classes) accuracy in percent through ONNX Runtime."""
    logits, _ = run_session(session, images, batch_size)
    targets = np.asarray(targets)
    top1 = round(100.0 * float(np.mean(logits.argmax(1) == targets)), 3)
    if logits.shape[1] < 5:
        return AccuracyRecord(top1=top1, count=len(targets))
    top5 = np.argsort(-logits, axis=1)[:, :5]
    return AccuracyRecord(
        top1=top1, count=len(targets), top5=round(100.0 * float(np.mean((top5 == targets[:, None]).any(1))), 3)
    )


def benchmark(
    session: Any, input_shape: Sequence[int], batch_sizes: Iterable[int] = (1,), seconds: float = 0.5
) -> Latencies:
    """Median latency in milliseconds per batch size (``latency_ms_b{n}``): a rough CPU figure, not a benchmark."""
    out: Latencies = {}
    for batch in batch_sizes:
        x = np.zeros((batch, *input_shape), dtype=np.float32)
        session.run(None, {INPUT_NAME: x})  # warm-up: first run allocates
        times: list[float] = []
        deadline = time.perf_counter() + seconds
        while len(times) < 3 or (time.perf_counter() < deadline and len(times) < 200):
            start = time.perf_counter()
            session.run(None, {INPUT_NAME: x})
            times.append(time.perf_counter() - start)
        out[f"latency_ms_b{batch}"] = round(1000 * float(np.median(times)), 3)
    return out
