"""The models being served: loading from the repository, polling it, swapping new versions in.

Like Triton's ``--model-control-mode=poll``: the repository is scanned at start and then every
``poll_interval_s``; a model whose card or files changed is reloaded in a worker thread while
the current sessions keep serving, and the new state replaces the old in one assignment on the
event loop. Requests that already hold the old :class:`Servable` finish on it (its batcher
drains); new requests get the new one. Nothing is dropped.

Each model's state says what it serves and, when something failed (invalid card, bad hash,
unreadable graph), why; one model failing never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort
from opentelemetry.trace import Tracer

from repository import ModelCard, Repository, RepositoryError, TensorSpec, sha256_file

from ..observability.metrics import Metrics, ModelMetrics
from ..settings import Settings
from .batching import BatchingConfig, DynamicBatcher
from .cpus import usable_cpus
from .errors import LoadError, ModelNotFound, ModelNotReady, VariantNotFound, VersionNotFound
from .preprocess import ImagePipeline
from .runtime import ORT_ERRORS, RuntimeOptions, Session, open_session, select_providers

__all__ = ["ModelManager", "ModelState", "Servable", "VersionState"]

logger = logging.getLogger(__name__)

ModelStatus = Literal["LOADING", "READY", "UNAVAILABLE"]
LOADING: ModelStatus = "LOADING"
READY: ModelStatus = "READY"
UNAVAILABLE: ModelStatus = "UNAVAILABLE"
DEFAULT_VARIANT = "fp32"

Fingerprint = tuple[object, ...]


class Servable:
    """One loaded variant of one version: what a request runs on."""

    def __init__(
        self,
        card: ModelCard,
        version: int,
        precision: str,
        session: Session,
        batcher: DynamicBatcher,
        images: ImagePipeline,
        sha256: str | None,
        metrics: ModelMetrics,
    ) -> None:
        self.card = card
        self.name = card.name
        self.version = version
        self.precision = precision
        self.session = session
        self.batcher = batcher
        self.images = images
        self.sha256 = sha256
        self.metrics = metrics
        self.input: TensorSpec = card.inputs[0]
        self.input_dtype = np.dtype(self.input.dtype)
        self.outputs: list[TensorSpec] = list(card.outputs)
        self.output_names: list[str] = [o.name for o in card.outputs]
        self.labels: list[str] = card.labels

    @property
    def provider(self) -> str:
        return self.session.provider


@dataclass(frozen=True)
class VersionState:
    version: int
    variants: Mapping[str, Servable]
    failed: Mapping[str, str] = field(default_factory=dict)

    @property
    def default(self) -> Servable:
        return self.variants.get(DEFAULT_VARIANT) or next(iter(self.variants.values()))


@dataclass(frozen=True)
class ModelState:
    """A model as the service sees it; replaced as a whole on every (re)load."""

    name: str
    status: ModelStatus
    reason: str | None = None
    card: ModelCard | None = None
    versions: Mapping[int, VersionState] = field(default_factory=dict)  # served, by number
    failed: Mapping[int, str] = field(default_factory=dict)  # versions that did not load, with why
    fingerprint: Fingerprint = ()

    @property
    def latest(self) -> VersionState | None:
        return self.versions[max(self.versions)] if self.versions else None

    def servable(self, version: int | None = None, variant: str | None = None) -> Servable:
        """The servable for ``version`` (default: latest served) and ``variant`` (default: fp32)."""
        if self.status != READY:
            why = f": {self.reason}" if self.reason else ""
            raise ModelNotReady(f"model {self.name!r} is {self.status.lower()}{why}", details={"status": self.status})
        if version is None:
            state = self.versions[max(self.versions)]
        elif version in self.versions:
            state = self.versions[version]
        elif version in self.failed:
            raise ModelNotReady(f"version {version} of {self.name!r} failed to load: {self.failed[version]}")
        else:
            served = ", ".join(map(str, sorted(self.versions)))
            extra = (
                " (in the card but not served: CNNSERVE_VERSION_POLICY=latest)"
                if self.card and version in self.card.versions
                else ""
            )
            raise VersionNotFound(f"model {self.name!r} has no version {version}{extra}; served: {served}")
        if variant is None:
            return state.default
        if variant in state.variants:
            return state.variants[variant]
        if variant in state.failed:
            raise ModelNotReady(
                f"{self.name!r} version {state.version} {variant} failed to load: {state.failed[variant]}"
            )
        raise VariantNotFound(
            f"{self.name!r} version {state.version} has no {variant} variant; available: {', '.join(state.variants)}"
        )


class ModelManager:
    """Loads the repository's models and keeps them in step with it.

    ``on_change`` is called with every model's state after each change (a worker of a group
    publishes them for the group's readiness); :attr:`scanned` is set once the first scan has
    loaded what the repository held.
    """

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        on_change: Callable[[list[ModelState]], None] | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.settings = settings
        self._tracer = tracer
        self.repository = Repository(settings.repository)
        self._metrics = metrics
        # 0: every usable CPU (python -m service has already divided them among its workers).
        threads = settings.intra_op_threads or usable_cpus()
        self._options = RuntimeOptions(
            tuple(settings.providers), threads, settings.inter_op_threads, settings.ort_spinning
        )
        self._executor = ThreadPoolExecutor(settings.inference_workers, thread_name_prefix="cnnserve-infer")
        self._models: dict[str, ModelState] = {}
        self._lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        self._on_change = on_change
        self.scanned = asyncio.Event()

    # --- reading -------------------------------------------------------------------------------

    def states(self) -> list[ModelState]:
        return [self._models[name] for name in sorted(self._models)]

    def get(self, name: str) -> ModelState:
        state = self._models.get(name)
        if state is None:
            known = ", ".join(sorted(self._models)) or "none yet"
            raise ModelNotFound(f"model {name!r} not found; models: {known}")
        return state

    def servable(self, name: str, version: int | None = None, variant: str | None = None) -> Servable:
        return self.get(name).servable(version, variant)

    def ready_names(self) -> list[str]:
        return [name for name, state in sorted(self._models.items()) if state.status == READY]

    @property
    def ready(self) -> bool:
        return any(state.status == READY for state in self._models.values())

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """List the models (as LOADING) and start loading them; returns at once."""
        available = ort.get_available_providers()
        chosen = select_providers(self._options.providers, available)
        dropped = [p for p in self._options.providers if p not in chosen]
        logger.info(
            "execution providers: %s%s", ", ".join(chosen), f" ({', '.join(dropped)} not available)" if dropped else ""
        )
        if not self.repository.root.is_dir():
            logger.warning("model repository %s does not exist (yet); polling it", self.repository.root)
        for name in await asyncio.to_thread(self.repository.names):
            self._models[name] = ModelState(name, LOADING)
        self._changed()
        self._watcher = asyncio.create_task(self._watch(), name="cnnserve-repository-watcher")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def _watch(self) -> None:
        interval = self.settings.poll_interval_s
        while True:
            try:
                await self.poll()
            except OSError as exc:  # the repository's disk went away: keep serving what is loaded
                logger.warning("cannot scan the repository %s: %s", self.repository.root, exc)
            self.scanned.set()
            if interval <= 0:
                return
            await asyncio.sleep(interval)

    async def poll(self) -> list[str]:
        """Load new and changed models, drop removed ones; returns the names (re)loaded."""
        changed = []
        async with self._lock:
            names = await asyncio.to_thread(self.repository.names)
            removed = set(self._models) - set(names)
            for name in removed:
                logger.info("%s: removed from the repository; unloaded", name)
                del self._models[name]
                self._metrics.observe_model(name, ready=False, served=0, latest=0)
            for name in names:
                previous = self._models.get(name)
                if previous is not None and previous.status != LOADING:
                    fingerprint = await asyncio.to_thread(self._fingerprint, name, previous.card)
                    if fingerprint == previous.fingerprint:
                        continue
                state = await asyncio.to_thread(self._load, name, previous)
                self._models[name] = state  # the swap
                self._observe(state)
                changed.append(name)
            if changed or removed:
                self._changed()
        return changed

    def _observe(self, state: ModelState) -> None:
        served = max(state.versions, default=0) if state.status == READY else 0
        latest = max(state.card.versions, default=0) if state.card is not None else 0
        self._metrics.observe_model(state.name, state.status == READY, served, latest)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.states())

    # --- loading (worker threads) ---------------------------------------------------------------

    def _fingerprint(self, name: str, card: ModelCard | None) -> Fingerprint:
        """What changes when the card or any of its files is rewritten."""
        return (_stat(self.repository.card_path(name)), *self._file_stats(name, card))

    def _file_stats(self, name: str, card: ModelCard | None) -> list[object]:
        if card is None:
            return []
        return [
            _stat(self.repository.model_dir(name) / str(number) / variant.file)
            for number, version in sorted(card.versions.items())
            for variant in version.variants.values()
            if variant.published
        ]

    def _load(self, name: str, previous: ModelState | None) -> ModelState:
        started = time.perf_counter()
        card_stat = _stat(self.repository.card_path(name))
        try:
            card = self.repository.load_card(name)
        except RepositoryError as exc:
            self._metrics.model_load_failures.labels(name).inc()
            return self._failed(name, previous, str(exc), (card_stat,))
        fingerprint = (card_stat, *self._file_stats(name, card))
        versions: dict[int, VersionState] = {}
        failed: dict[int, str] = {}
        for number in sorted(card.versions, reverse=True):
            try:
                versions[number] = self._load_version(card, number, previous)
            except LoadError as exc:
                failed[number] = str(exc)
                self._metrics.model_load_failures.labels(name).inc()
                logger.warning("%s: version %d not loaded: %s", name, number, exc)
            if versions and self.settings.version_policy == "latest":
                break
        if not versions:
            reasons = "; ".join(f"version {n}: {why}" for n, why in failed.items()) or "the card lists no version"
            return self._failed(name, previous, reasons, fingerprint)
        reason = "; ".join(f"version {n} not loaded: {why}" for n, why in failed.items()) or None
        state = ModelState(name, READY, reason, card, versions, failed, fingerprint)
        latest = state.latest
        assert latest is not None
        logger.info(
            "%s: serving version(s) %s (%s) on %s, loaded in %.2fs",
            name,
            ", ".join(map(str, sorted(versions))),
            ", ".join(latest.variants),
            latest.default.provider,
            time.perf_counter() - started,
        )
        return state

    def _failed(self, name: str, previous: ModelState | None, reason: str, fingerprint: Fingerprint) -> ModelState:
        if previous is not None and previous.status == READY:
            # A broken update never takes down what was serving: keep it, say why it was not replaced.
            logger.warning("%s: reload failed, still serving the loaded version(s): %s", name, reason)
            return ModelState(
                name, READY, f"reload failed: {reason}", previous.card, previous.versions, previous.failed, fingerprint
            )
        logger.warning("%s: unavailable: %s", name, reason)
        return ModelState(name, UNAVAILABLE, reason, fingerprint=fingerprint)

    def _load_version(self, card: ModelCard, number: int, previous: ModelState | None) -> VersionState:
        version = card.versions[number]
        if version.version != number:
            raise LoadError(f"version key {number} holds version {version.version}")
        wanted = [p for p in self.settings.variants if p in version.variants and version.variants[p].published]
        if not wanted:
            published = [p for p, v in version.variants.items() if v.published]
            raise LoadError(f"no published variant among {self.settings.variants} (published: {published})")
        old = previous.versions.get(number) if previous is not None else None
        variants: dict[str, Servable] = {}
        failed: dict[str, str] = {}
        for precision in wanted:
            sha256 = version.variants[precision].sha256
            reuse = old.variants.get(precision) if old is not None else None
            try:
                if reuse is not None and reuse.sha256 == sha256 and sha256 is not None:
                    session = reuse.session  # same bytes: keep the warm session, new card and queue
                else:
                    session = self._open(card, number, precision)
            except LoadError as exc:
                failed[precision] = str(exc)
                continue
            variants[precision] = self._servable(card, number, precision, session, sha256)
        if DEFAULT_VARIANT in failed or not variants:
            raise LoadError("; ".join(f"{p}: {why}" for p, why in failed.items()))
        return VersionState(number, variants, failed)

    def _open(self, card: ModelCard, number: int, precision: str) -> Session:
        variant = card.versions[number].variants[precision]  # type: ignore[index]
        path = self.repository.variant_path(card.name, number, precision)
        try:
            size = path.stat().st_size
            digest = sha256_file(path) if variant.sha256 else None
        except OSError as exc:
            raise LoadError(f"{path.name}: cannot read it: {exc.strerror or exc}") from None
        if variant.bytes is not None and size != variant.bytes:
            raise LoadError(f"{path.name} has {size} bytes, the card says {variant.bytes}")
        if variant.sha256 and digest != variant.sha256:
            raise LoadError(f"{path.name} does not match its sha256 in the card (corrupt or replaced)")
        session = open_session(path, self._options)
        session.check(card.inputs, card.outputs)
        if self.settings.warmup:
            try:
                session.warm_up(card.inputs[0])
            except ORT_ERRORS as exc:
                raise LoadError(f"{path.name}: warm-up failed: {exc}") from exc
        return session

    def _servable(self, card: ModelCard, number: int, precision: str, session: Session, sha256: str | None) -> Servable:
        s = self.settings
        config = BatchingConfig(
            max_batch_size=s.max_batch_size or card.batching.max_batch_size,
            max_queue_delay_microseconds=(
                s.max_queue_delay_microseconds
                if s.max_queue_delay_microseconds is not None
                else card.batching.max_queue_delay_microseconds
            ),
            max_queue_size=s.max_queue_size,
            regroup=s.batch_regroup,
        )
        metrics = self._metrics.model(card.name)
        batcher = DynamicBatcher(session.run, config, self._executor, metrics, self._tracer)
        images = ImagePipeline(card.input, s.max_image_pixels)
        return Servable(card, number, precision, session, batcher, images, sha256, metrics)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino
