"""ONNX Runtime sessions: provider selection, opening, checking against the card, warm-up.

Provider selection is a pure function of what was asked for and what the installed
onnxruntime offers (:func:`select_providers`), so it is tested without a GPU. What a session
actually runs on is read back from the session (ONNX Runtime drops a provider it cannot
initialise), and that is what the service reports.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state

from repository import TensorSpec

from .errors import LoadError

__all__ = ["CPU", "ORT_ERRORS", "RuntimeOptions", "Session", "open_session", "select_providers", "session_options"]

logger = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"

# What ONNX Runtime raises for a bad file, graph or input (its classes derive from Exception only).
ORT_ERRORS: tuple[type[Exception], ...] = (
    *(
        cls
        for cls in vars(_ort_state).values()
        if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ == _ort_state.__name__
    ),
    RuntimeError,
    ValueError,
    OSError,
)

_NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16, "float64": np.float64}


def select_providers(requested: Sequence[str], available: Sequence[str]) -> list[str]:
    """The requested providers that the installed onnxruntime offers, in the requested order.

    CPU is appended when missing: a session always has a provider to fall back on, so asking
    for CUDA on a machine without it degrades to CPU instead of failing.

    >>> select_providers(["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"])
    ['CPUExecutionProvider']
    """
    chosen = [p for p in dict.fromkeys(requested) if p in available]
    return chosen if CPU in chosen else [*chosen, CPU]


@dataclass(frozen=True)
class RuntimeOptions:
    providers: tuple[str, ...]
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    spinning: bool = False


class Session:
    """One ONNX Runtime session checked against the model card's input and outputs."""

    def __init__(self, session: ort.InferenceSession, path: Path) -> None:
        self._session = session
        self.path = path
        self.providers: list[str] = session.get_providers()
        self.input_name = session.get_inputs()[0].name
        self.output_names = [o.name for o in session.get_outputs()]
        self._run = session.run

    @property
    def provider(self) -> str:
        """The provider ONNX Runtime placed the graph on first (the one that matters)."""
        return self.providers[0]

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        return self._run(self.output_names, {self.input_name: batch})

    def check(self, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]) -> None:
        """Raise :class:`LoadError` if the graph's signature is not the card's."""
        graph_inputs = {i.name: i for i in self._session.get_inputs()}
        if len(inputs) != 1 or len(graph_inputs) != 1 or inputs[0].name not in graph_inputs:
            raise LoadError(
                f"{self.path}: graph inputs {sorted(graph_inputs)} do not match the card's {[i.name for i in inputs]}"
            )
        missing = [o.name for o in outputs if o.name not in self.output_names]
        if missing:
            raise LoadError(f"{self.path}: graph has no output(s) {missing}; it has {self.output_names}")
        self.output_names = [o.name for o in outputs]

    def warm_up(self, spec: TensorSpec) -> None:
        """One zero batch through the graph: allocations and kernel choices happen now, not on a request."""
        shape = [1 if d < 0 else d for d in spec.shape]
        self.run(np.zeros(shape, dtype=_NUMPY_DTYPES.get(spec.dtype, np.float32)))


def session_options(options: RuntimeOptions) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if options.intra_op_threads:
        so.intra_op_num_threads = options.intra_op_threads
    if options.inter_op_threads:
        so.inter_op_num_threads = options.inter_op_threads
    # ONNX Runtime's pool threads (there are none with one thread, the default with one worker per
    # CPU) spin while waiting for work. Between the operators of a run that saves a wake-up each on an
    # idle machine (ResNet-50 at batch 1, 2 threads: 2.0 ms instead of 2.9 ms); on a busy one the
    # spinning thread takes the core the thread it waits for needs: 1 worker x 2 threads on 2 shared
    # cores served ResNet-50 at 256 requests/s spinning, 452 not (4.5 and 2.9 ms of CPU a request),
    # and even its batch-1 latency was lower without (6.7 ms, 7.8 spinning). So spinning is opt-in,
    # and never lasts past a run (force_spinning_stop): an idle server burns no CPU.
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if options.spinning else "0")
    so.add_session_config_entry("session.force_spinning_stop", "1")
    so.log_severity_level = 3  # errors only: the service reports load problems itself
    return so


def open_session(path: Path, options: RuntimeOptions) -> Session:
    """Open ``path`` on the best available provider; fall back to CPU alone if that fails."""
    providers = select_providers(options.providers, ort.get_available_providers())
    try:
        return Session(ort.InferenceSession(str(path), session_options(options), providers=providers), path)
    except ORT_ERRORS as exc:
        if providers == [CPU]:
            raise LoadError(f"{path}: ONNX Runtime cannot load it: {exc}") from exc
        logger.warning("%s: cannot open on %s (%s); falling back to CPU", path, providers, exc)
    try:
        return Session(ort.InferenceSession(str(path), session_options(options), providers=[CPU]), path)
    except ORT_ERRORS as exc:
        raise LoadError(f"{path}: ONNX Runtime cannot load it: {exc}") from exc
