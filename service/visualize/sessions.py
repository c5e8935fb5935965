"""What the views read from a version's float32 ONNX file, opened on first use and kept in bounds.

The activation view needs a second ONNX Runtime session of the served file whose graph declares
the recorded layer tensors as outputs; the filter view needs weights (initializers) from the same
file. Neither exists until a view asks for it, so loading, warm-up and ``/predict`` never pay
for them: sessions are opened in a worker thread on the first request for a version and kept,
least recently used first out, up to ``CNNSERVE_VIEW_SESSIONS``; a new version of a model has a
new key, and its old session ages out.
"""

from __future__ import annotations

import asyncio
import hashlib
import mmap
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from repository import LayerOutputs

from ..core.errors import LayersNotRecorded, ModelNotReady
from ..core.model_manager import Servable
from ..core.runtime import CPU, ORT_ERRORS, RuntimeOptions, select_providers, session_options
from ..observability.metrics import Metrics
from ..settings import Settings
from .onnx_wire import OnnxFormatError, read_initializer, with_outputs

__all__ = ["LayerSession", "LayerSessions", "layer_record"]

Key = tuple[str, int, str | None]
_WEIGHTS_KEPT = 16


def layer_record(servable: Servable) -> LayerOutputs:
    """The version's record of its layers' tensors; 409 with what to do for a version published without one."""
    record = servable.card.versions[servable.version].layer_outputs
    if record is None:
        raise LayersNotRecorded(
            f"model {servable.name!r} version {servable.version} was published before the build recorded its "
            "layers' tensors: rebuild it (python -m export build --force) to see its feature maps and filters",
            details={"model": servable.name, "version": servable.version},
        )
    return record


@dataclass(frozen=True)
class LayerSession:
    """The served graph with every recorded layer tensor as an extra output."""

    session: ort.InferenceSession
    input_name: str

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def run(self, tensors: Sequence[str], batch: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(tensors, self.session.run(list(tensors), {self.input_name: batch}), strict=True))


class LayerSessions:
    """Layer sessions and weights per model version, created on first use, bounded by the settings."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._options = RuntimeOptions(
            tuple(settings.providers), settings.intra_op_threads, settings.inter_op_threads, settings.ort_spinning
        )
        self._limit = settings.view_sessions
        self._metrics = metrics
        self._sessions: OrderedDict[Key, LayerSession] = OrderedDict()
        self._weights: OrderedDict[tuple[Key, str], np.ndarray] = OrderedDict()
        self._lock = asyncio.Lock()

    async def session(self, servable: Servable, record: LayerOutputs) -> LayerSession:
        key = _key(servable, record)
        async with self._lock:  # one opening at a time: a second request for the same version waits for it
            found = self._sessions.get(key)
            if found is None:
                found = await asyncio.to_thread(self._open, servable, record)
                self._sessions[key] = found
                self._metrics.view_sessions.labels(servable.name).inc()
                while len(self._sessions) > self._limit:
                    self._sessions.popitem(last=False)
            self._sessions.move_to_end(key)
            return found

    async def weights(self, servable: Servable, record: LayerOutputs, name: str) -> np.ndarray:
        key = (_key(servable, record), name)
        found = self._weights.get(key)
        if found is None:
            found = await asyncio.to_thread(self._read_weights, servable, record, name)
            self._weights[key] = found
            while len(self._weights) > _WEIGHTS_KEPT:
                self._weights.popitem(last=False)
        self._weights.move_to_end(key)
        return found

    def _open(self, servable: Servable, record: LayerOutputs) -> LayerSession:
        model = _read_checked(servable, record)
        tensors = sorted({layer.tensor for layer in record.layers} - {servable.input.name})
        try:
            graph = with_outputs(model, tensors)
        except OnnxFormatError as exc:
            raise ModelNotReady(f"{record.file} of {servable.name!r} cannot be read for the views: {exc}") from None
        providers = select_providers(self._options.providers, ort.get_available_providers())
        for attempt in (providers, [CPU]):
            try:
                session = ort.InferenceSession(graph, session_options(self._options), providers=attempt)
                return LayerSession(session, servable.input.name)
            except ORT_ERRORS as exc:
                error = exc
        raise ModelNotReady(f"ONNX Runtime cannot open the layer view of {servable.name!r}: {error}")

    def _read_weights(self, servable: Servable, record: LayerOutputs, name: str) -> np.ndarray:
        path, _ = _file(servable, record)
        try:
            with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return read_initializer(data, name)
        except (OSError, OnnxFormatError) as exc:
            raise ModelNotReady(f"the weights {name!r} of {servable.name!r} cannot be read: {exc}") from None


def _file(servable: Servable, record: LayerOutputs) -> tuple[Path, str | None]:
    """The file the record is of (float32: whatever variant the servable is) and its sha256 in the card."""
    variants = servable.card.versions[servable.version].variants.values()
    sha256 = next((v.sha256 for v in variants if v.file == record.file), None)
    return servable.session.path.parent / record.file, sha256


def _key(servable: Servable, record: LayerOutputs) -> Key:
    return servable.name, servable.version, _file(servable, record)[1]


def _read_checked(servable: Servable, record: LayerOutputs) -> bytes:
    """The file's bytes, if they are still the ones the card describes."""
    path, sha256 = _file(servable, record)
    try:
        model = path.read_bytes()
    except OSError as exc:
        raise ModelNotReady(f"{path.name} of {servable.name!r} cannot be read: {exc.strerror or exc}") from None
    if sha256 is not None and hashlib.sha256(model).hexdigest() != sha256:
        raise ModelNotReady(f"{path.name} of {servable.name!r} changed on disk; the new version loads shortly")
    return model
