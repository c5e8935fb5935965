"""``python -m export build``: train (or reuse), export, verify and publish every model of the set.

For each network, fastest first (so that a server polling the repository can serve LeNet-5
within a couple of minutes while the rest is still training):

1. **checkpoint** - reuse ``<checkpoints>/<name>/checkpoint.pt`` when its metadata shows the
   same recipe, data and seed, else train it (``--quick`` checkpoints live in ``<checkpoints>/quick``);
2. **up to date?** - when the published latest version was made from a checkpoint with the
   same sha256 and with the same export options, there is nothing to do;
3. **export** the float32 ONNX model, **verify** it (``onnx.checker``, ONNX Runtime against
   PyTorch on random and real inputs, the test accuracy again through ONNX Runtime);
4. **variants** - INT8 (static QDQ, calibrated on training images) and float16, each measured
   on the test set and published only within ``max_accuracy_drop`` points of float32;
5. **publish** version N+1 (earlier versions stay), ``config.pbtxt`` and, last, the card.

``import_torchvision`` runs steps 3-5 for a network with torchvision-format weights.
``--quick`` trains for a moment (tests, smoke runs) and says so in the card.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from repository import (
    VARIANT_FILES,
    Architecture,
    Batching,
    InputSpec,
    ModelCard,
    Repository,
    RepositoryError,
    SummaryRecord,
    Variant,
    VersionCard,
    sha256_file,
)
from repository.publish import (
    file_variant,
    load_previous,
    next_version,
    now,
    publish_version,
    staging_dir,
    with_version,
)

from .onnx_export import (
    EXPORT_REVISION,
    ExportError,
    ExportOptions,
    benchmark,
    check_onnx,
    compare_sessions,
    evaluate,
    export_onnx,
    graph_signature,
    make_session,
    read_metadata,
    serving_copy,
    verify_parity,
)
from .quantize import QuantizeOptions, export_fp16, quantize_int8

__all__ = [
    "BUILD_FORMAT",
    "QUICK_TRAINING",
    "BuildOptions",
    "BuildResult",
    "ExportJob",
    "build",
    "export_and_publish",
    "import_torchvision",
    "input_spec",
]

log = logging.getLogger(__name__)

# Bump when the pipeline changes what it writes: every model is then rebuilt once (so does
# export.onnx_export.EXPORT_REVISION, for the graph alone).
BUILD_FORMAT = 1
# --quick: a moment of training per network; the card says "quick" and the models are not real.
# Small batches give BatchNorm's running statistics enough steps to settle in those few images.
QUICK_TRAINING: dict[str, Any] = {"epochs": 2, "limit_train": 256, "batch_size": 32}


@dataclass(frozen=True)
class BuildOptions:
    """What ``python -m export build`` does. ``models=None`` is the default set (``export.recipes.DEFAULT_SET``)."""

    models: Sequence[str] | None = None
    repository: Path = Path("model_repository")
    checkpoints: Path = Path("runs")
    quick: bool = False
    data: str = "digits"
    seed: int = 0
    force: bool = False
    progress: bool = True
    threads: int | None = None
    export: ExportOptions = ExportOptions()
    quantize: QuantizeOptions = QuantizeOptions()
    batching: Batching = Batching()

    def __post_init__(self) -> None:
        object.__setattr__(self, "repository", Path(self.repository))
        object.__setattr__(self, "checkpoints", Path(self.checkpoints))
        if self.models is not None:
            object.__setattr__(self, "models", tuple(self.models))

    def export_key(self) -> dict[str, Any]:
        """Everything besides the checkpoint that decides what a build publishes (stored in the card)."""
        return {
            "build_format": BUILD_FORMAT,
            "export_revision": EXPORT_REVISION,
            "export": self.export.to_dict(),
            "quantize": self.quantize.to_dict(),
            "batching": self.batching.model_dump(mode="json"),
            "quick": self.quick,
        }

    def checkpoint_dir(self, name: str) -> Path:
        # Quick checkpoints live apart, so a quick build never replaces (or reuses) a real one.
        return self.checkpoints / ("quick" if self.quick else "") / name


@dataclass
class BuildResult:
    name: str
    status: str  # "published", "up-to-date" or "failed"
    version: int | None = None
    message: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass
class ExportJob:
    """One network ready to export: weights loaded, described, with the data to check it on.

    ``test`` (images, targets) measures accuracy; ``calibration`` are training images for INT8;
    ``real_inputs`` feed the parity check (test images when there are some).
    """

    name: str
    model: nn.Module
    architecture: Architecture
    labels: list[str]
    input: InputSpec
    training: dict[str, Any]
    description: str = ""
    quick: bool = False
    test: tuple[np.ndarray, np.ndarray] | None = None
    calibration: np.ndarray | None = None
    real_inputs: np.ndarray | None = None
    reference: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------- the command


def build(options: BuildOptions = BuildOptions()) -> list[BuildResult]:
    """Build every model of ``options``; returns one :class:`BuildResult` per model (failures included)."""
    from tqdm import tqdm

    from training.recipes import DEFAULT_SET

    names = _ordered(options.models if options.models is not None else DEFAULT_SET, DEFAULT_SET)
    repository = Repository(options.repository)
    results = []
    log.info("building %d model(s) into %s%s", len(names), repository.root, " (quick)" if options.quick else "")
    bar = tqdm(names, desc="build", unit="model", file=sys.stderr, disable=not options.progress, dynamic_ncols=True)
    with _torch_threads(options.threads):
        for name in bar:
            results.append(_build_logged(name, repository, options, bar))
    bar.close()
    return results


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _build_logged(name: str, repository: Repository, options: BuildOptions, bar: Any) -> BuildResult:
    """:func:`build_one`, timed, with its steps on the progress bar; a failure is a result, not an exception."""
    started = time.perf_counter()

    def step(what: str) -> None:
        bar.set_postfix_str(f"{name}: {what}")
        log.info("%s: %s", name, what)

    try:
        result = build_one(name, repository, options, step)
    except (ExportError, RepositoryError, ValueError, KeyError, RuntimeError, OSError, ArithmeticError) as err:
        log.error("%s: failed: %s", name, err)
        log.debug("%s: traceback", name, exc_info=True)
        result = BuildResult(name, "failed", message=str(err))
    result.seconds = round(time.perf_counter() - started, 1)
    # DEBUG: the command prints each result itself (failures are logged above).
    log.debug(
        "%s: %s%s (%.1fs)", name, result.status, f" version {result.version}" if result.version else "", result.seconds
    )
    return result


def _ordered(names: Sequence[str], default_set: Sequence[str]) -> list[str]:
    """De-duplicated, in default-set order (fastest first), names outside the set last."""
    unique = list(dict.fromkeys(names))
    rank = {n: i for i, n in enumerate(default_set)}
    return sorted(unique, key=lambda n: (rank.get(n, len(rank)), unique.index(n)))


def build_one(
    name: str, repository: Repository, options: BuildOptions, step: Callable[[str], None] = lambda _: None
) -> BuildResult:
    """Steps 1-5 of the module docstring for one network."""
    import models

    models.get_model_info(name)  # an unknown name fails here, with the known names
    step("checkpoint")
    checkpoint = ensure_checkpoint(name, options)
    source_sha = sha256_file(checkpoint)
    previous = load_previous(repository, name)
    if not options.force and _up_to_date(repository, previous, source_sha, options):
        assert previous is not None
        return BuildResult(name, "up-to-date", previous.latest_version, "nothing changed")
    step("loading data")
    job = job_from_checkpoint(checkpoint, options, source_sha)
    version = export_and_publish(job, repository, options, step)
    return BuildResult(name, "published", version)


def _up_to_date(repository: Repository, previous: ModelCard | None, source_sha: str, options: BuildOptions) -> bool:
    if previous is None:
        return False
    latest = previous.versions[previous.latest_version]
    same = (
        latest.training.get("source_sha256") == source_sha
        and latest.verification.get("export_options") == options.export_key()
    )
    if not same:
        return False
    problems = repository.check(previous.name, previous)
    if problems:
        log.warning("%s: the published files differ from the card (%s); publishing again", previous.name, problems[0])
        return False
    return True


# ------------------------------------------------------------------------------------ training


def _training(name: str, options: BuildOptions) -> tuple[Any, dict[str, Any]]:
    """The recipe ``name`` trains with under ``options``, and the :class:`TrainConfig` overrides (quick)."""
    from training.train import TrainConfig

    overrides = dict(QUICK_TRAINING) if options.quick else {}
    recipe = TrainConfig(
        model=name, epochs=overrides.get("epochs"), batch_size=overrides.get("batch_size")
    ).resolve_recipe()
    return recipe, overrides


def _reusable(checkpoint: Path, recipe: Any, options: BuildOptions) -> bool:
    """Whether ``checkpoint`` was trained on this data, recipe and seed (a different one is kept, not reused)."""
    import torch

    from training.weights import WeightsError, read_checkpoint

    if not checkpoint.is_file():
        return False
    try:
        with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
            meta = read_checkpoint(checkpoint).meta
    except WeightsError as err:
        log.warning("%s: cannot reuse it (%s); training again", checkpoint, err)
        return False
    return (
        meta.dataset == options.data
        and meta.recipe.to_dict() == recipe.to_dict()
        and meta.metrics.get("seed", options.seed) == options.seed
    )


def ensure_checkpoint(name: str, options: BuildOptions) -> Path:
    """``<checkpoints>/<name>/checkpoint.pt``, trained now unless the one there has the same recipe, data and seed."""
    from training.train import TrainConfig, train

    out = options.checkpoint_dir(name)
    checkpoint = out / "checkpoint.pt"
    recipe, overrides = _training(name, options)
    if _reusable(checkpoint, recipe, options):
        log.info("%s: reusing %s (same recipe, data and seed)", name, checkpoint)
        return checkpoint
    log.info("%s: training into %s%s", name, out, " (quick)" if options.quick else "")
    result = train(
        TrainConfig(
            model=name,
            data=options.data,
            out=out,
            seed=options.seed,
            quiet=not options.progress,
            last="none",
            threads=options.threads,
            **overrides,
        )
    )
    return result.checkpoint


# ------------------------------------------------------------------------------------ the job


def input_spec(preprocessing: Any) -> InputSpec:
    """The card's :class:`InputSpec` for an ``export.data.Preprocessing``.

    ``stretch`` (digits: the whole square image to ``image_size``) is, for the square images it
    is used on, the same as resizing the shorter side to ``image_size`` and cropping it whole.
    """
    size = int(preprocessing.image_size)
    resize = size if preprocessing.resize == "stretch" else math.floor(size / preprocessing.crop_pct)
    return InputSpec(
        shape=[preprocessing.channels, size, size],
        color_mode=preprocessing.color_mode,
        resize=resize,
        crop=size,
        interpolation=preprocessing.interpolation,
        mean=list(preprocessing.mean),
        std=list(preprocessing.std),
    )


def _architecture(model: nn.Module, options: dict[str, Any]) -> Architecture:
    info = model.info
    return Architecture(name=info.name, family=info.family, paper=str(info.paper), options=dict(options))


def _arrays(dataset: Any, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images, targets) of a dataset of :mod:`export.data`, the first ``limit`` of them."""
    import torch

    from training.data import TensorImages, eval_loader

    n = len(dataset) if limit is None else min(limit, len(dataset))
    if isinstance(dataset, TensorImages):
        x, y = dataset.batch(torch.arange(n))
        return x.numpy().astype(np.float32, copy=False), y.numpy()
    xs, ys, seen = [], [], 0
    for x, y in eval_loader(dataset, 64):
        xs.append(x.numpy())
        ys.append(y.numpy())
        seen += len(y)
        if seen >= n:
            break
    return np.concatenate(xs)[:n].astype(np.float32, copy=False), np.concatenate(ys)[:n]


def job_from_checkpoint(checkpoint: Path, options: BuildOptions, source_sha: str | None = None) -> ExportJob:
    """An :class:`ExportJob` for one of our checkpoints, with its test data and training images."""
    import torch

    from training.data import load_data
    from training.weights import load_checkpoint

    # Checkpoints record torch.__version__, a str subclass that weights_only loading must be told about.
    with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
        model, ckpt = load_checkpoint(checkpoint)
    meta = ckpt.meta
    prep = meta.preprocessing
    splits = load_data(meta.dataset, image_size=prep.image_size, in_channels=prep.channels, preprocessing=prep)
    test = _arrays(splits.test)
    calibration, _ = _arrays(splits.train, options.quantize.calibration_images)
    metrics = dict(meta.metrics)
    trained = datetime.fromtimestamp(checkpoint.stat().st_mtime, UTC).isoformat(timespec="seconds")
    training = {
        "source": "checkpoint",
        "checkpoint": str(checkpoint),
        "source_sha256": source_sha or sha256_file(checkpoint),
        "data": meta.dataset,
        "split_sizes": metrics.get("split_sizes", splits.sizes),
        "epochs": metrics.get("epochs", meta.epoch),
        "best_epoch": metrics.get("best_epoch"),
        "recipe": meta.recipe.to_dict(),
        "metrics": {k: metrics[k] for k in ("test_top1", "test_top5", "test_loss", "val_top1") if k in metrics},
        "seconds": metrics.get("seconds"),
        "trained_at": trained,
        "seed": metrics.get("seed"),
        "device": metrics.get("device"),
        "machine": metrics.get("machine"),
        "torch": metrics.get("torch"),
        "quick": options.quick,
    }
    quick_note = " QUICK BUILD (--quick: a moment of training for tests): not a real model." if options.quick else ""
    info = model.info
    return ExportJob(
        name=meta.model,
        model=model,
        architecture=_architecture(model, meta.model_options),
        labels=list(meta.labels),
        input=input_spec(prep),
        training=training,
        description=f"{info.description} Trained on {meta.dataset}.{quick_note}",
        quick=options.quick,
        test=test,
        calibration=calibration,
        real_inputs=test[0],
        reference={k[len("test_") :]: float(metrics[k]) for k in ("test_top1", "test_top5") if k in metrics},
    )


# ------------------------------------------------------------------------ export and publish


def _summary(model: nn.Module, shape: Sequence[int]) -> SummaryRecord:
    import models

    return SummaryRecord.model_validate(models.summarize(model, tuple(shape)).to_dict())


def _canonical_summary(name: str) -> SummaryRecord:
    import torch

    import models

    with torch.device("meta"):
        canonical = models.create_model(name)
    return SummaryRecord.model_validate(models.summarize(canonical, canonical.info.input_size).to_dict())


def _tools() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    return {"torch": str(torch.__version__), "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def export_and_publish(
    job: ExportJob, repository: Repository, options: BuildOptions, step: Callable[[str], None] = lambda _: None
) -> int:
    """Export, verify and publish ``job`` as the next version of ``job.name``; returns that version.

    Raises :class:`ExportError` (nothing published) when the float32 model fails its checks.
    """
    previous = load_previous(repository, job.name)
    version = next_version(previous)
    shape = list(job.input.shape)
    created = now()
    metadata = {
        "name": job.name,
        "version": version,
        "architecture": job.architecture.name,
        "labels": job.labels,
        "input": job.input.model_dump(mode="json"),
        "quick": job.quick,
        "created": created,
        "description": job.description,
    }
    staged = staging_dir(repository, job.name)
    try:
        net = serving_copy(job.model)
        fp32 = staged / VARIANT_FILES["fp32"]
        step("exporting float32 ONNX")
        export_onnx(job.model, fp32, shape, metadata={**metadata, "precision": "fp32"}, options=options.export)
        step("verifying float32")
        check_onnx(fp32)
        folded = read_metadata(fp32).get("folded_pooling")
        inputs, outputs = graph_signature(fp32)
        session = make_session(fp32, options.threads)
        parity = verify_parity(job.model, session, shape, job.real_inputs, options=options.export, net=net)
        if not parity["passed"]:
            raise ExportError(
                f"{job.name}: ONNX Runtime differs from PyTorch (max |logit diff| {parity['max_abs_diff']:.3g} > "
                f"{parity['tolerance']:.3g}, top-1 agreement {parity['top1_agreement']:.2%}); nothing published. "
                "Try another --opset or report the network's ops."
            )
        checker = {"fp32": "passed"}
        accuracy: dict[str, Any] = {}
        if job.reference:
            accuracy["pytorch"] = dict(job.reference)
        if job.test is not None:
            accuracy["fp32"] = evaluate(session, *job.test)
        bench_shapes = (1, 32)
        speed = {"fp32": benchmark(session, shape, bench_shapes, seconds=0.1 if job.quick else 0.5)}
        variants: dict[str, Variant] = {
            "fp32": file_variant(fp32, "fp32", test_top1=accuracy.get("fp32", {}).get("top1"))
        }
        judged: dict[str, Any] = {}
        for precision in options.quantize.variants:
            step(f"{precision} variant")
            variant, record = _make_variant(
                precision,
                job,
                fp32,
                session,
                accuracy.get("fp32", {}).get("top1"),
                staged,
                shape,
                {**metadata, "precision": precision},
                options,
            )
            variants[precision] = variant
            judged[precision] = record
            if record.get("checker"):
                checker[precision] = record.pop("checker")
            if record.get("speed"):
                speed[precision] = record.pop("speed")
            if "accuracy" in record:
                accuracy[precision] = record.pop("accuracy")
        del session

        verification = {
            "onnx_checker": checker,
            "parity": parity,
            "accuracy": accuracy,
            "variants": judged,
            "speed": {"device": "cpu", "threads": options.threads, **speed},
            "export_options": options.export_key(),
            "folded_pooling": folded,
            "tools": _tools(),
            "opset": options.export.opset,
        }
        step("publishing")
        card = with_version(
            {
                "name": job.name,
                "description": job.description,
                "architecture": job.architecture,
                "labels": job.labels,
                "input": job.input,
                "inputs": inputs,
                "outputs": outputs,
                "batching": options.batching,
                "quick": job.quick,
                "summary": _summary(net, shape),
                "canonical_summary": _canonical_summary(job.architecture.name),
            },
            previous,
            VersionCard(
                version=version, created=created, variants=variants, verification=verification, training=job.training
            ),
        )
        publish_version(repository, card, staged)
        return version
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)


def _make_variant(
    precision: str,
    job: ExportJob,
    fp32: Path,
    fp32_session: Any,
    fp32_top1: float | None,
    staged: Path,
    shape: list[int],
    metadata: dict[str, Any],
    options: BuildOptions,
) -> tuple[Variant, dict[str, Any]]:
    """Make, check and judge one reduced-precision variant; returns its record and what was measured."""
    path = staged / VARIANT_FILES[precision]
    limit = options.quantize.max_accuracy_drop
    if precision == "int8":
        if job.calibration is None or not len(job.calibration):
            reason = "no training images to calibrate on" + (
                "" if job.test is not None else " and no labelled test data to measure its accuracy"
            )
            return Variant(precision="int8", file=path.name, published=False, reason=reason), {"published": False}
        quantize_int8(fp32, path, job.calibration, metadata=metadata, options=options.quantize)
    else:
        export_fp16(job.model, path, shape, metadata=metadata, options=options.export)
    check_onnx(path)
    session = make_session(path, options.threads)
    record: dict[str, Any] = {"checker": "passed"}
    probe = job.real_inputs if job.real_inputs is not None else None
    if probe is not None and len(probe):
        record["vs_fp32"] = compare_sessions(fp32_session, session, probe[: options.export.real_inputs])
    if precision == "int8":
        # float16 on a CPU is emulated: its timing would say nothing about the GPUs it is for.
        record["speed"] = benchmark(session, shape, (1, 32), seconds=0.1 if job.quick else 0.5)
    top1 = None
    if job.test is not None and fp32_top1 is not None:
        record["accuracy"] = evaluate(session, *job.test)
        top1 = record["accuracy"]["top1"]
        reference = fp32_top1
        change = round(top1 - reference, 3)
        record["top1_change"] = change
        published = change >= -limit
        reason = (
            None
            if published
            else (f"test top-1 {top1:.2f}% is {-change:.2f} points below float32's {reference:.2f}% (limit {limit:g})")
        )
    elif precision == "fp16" and "vs_fp32" in record:
        agreement = record["vs_fp32"]["top1_agreement"]
        published = agreement == 1.0
        reason = None if published else f"top-1 agreement with float32 is {agreement:.0%} on the sample images"
        record["note"] = "no labelled test data: judged on its top-1 agreement with float32"
    else:
        published, reason = False, "no labelled test data to measure its accuracy"
    record["published"] = published
    del session
    if not published:
        log.warning("%s: %s variant not published: %s", job.name, precision, reason)
        path.unlink(missing_ok=True)
        return Variant(precision=precision, file=path.name, published=False, test_top1=top1, reason=reason), record
    return file_variant(path, precision, test_top1=top1), record


# ------------------------------------------------------------------------- torchvision import


def _labels_file(path: Path | None, num_classes: int) -> list[str]:
    if path is None:
        log.warning("no --labels: naming the %d classes by their index", num_classes)
        return [str(i) for i in range(num_classes)]
    try:
        labels = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError as err:
        raise ValueError(f"cannot read labels file {path}: {err}") from None
    if len(labels) != num_classes:
        raise ValueError(
            f"{path} has {len(labels)} labels but the weights have {num_classes} classes; "
            "give one label per line, in class order"
        )
    return labels


def _sample_images(spec: InputSpec) -> np.ndarray:
    """scikit-learn's two bundled photographs (and their mirror images), preprocessed as ``spec`` says."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    from training.transforms import eval_transform

    transform = eval_transform(
        spec.crop, spec.mean, spec.std, crop_pct=spec.crop / spec.resize, interpolation=spec.interpolation
    )
    out = []
    for array in load_sample_images().images:
        image = Image.fromarray(array).convert(spec.color_mode)
        out.append(transform(image).numpy())
        out.append(transform(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)).numpy())
    return np.stack(out).astype(np.float32)


def import_torchvision(
    arch: str,
    weights: str | os.PathLike[str],
    *,
    labels: str | os.PathLike[str] | None = None,
    name: str | None = None,
    options: BuildOptions = BuildOptions(),
) -> int:
    """Publish ``arch`` with torchvision-format ``weights`` (ImageNet preprocessing); returns the version.

    The weights are loaded strictly (:func:`export.weights.load_torchvision_weights`: every
    missing or unexpected key is listed). Without a labelled test set the INT8 variant is not
    published; float16 is published when it agrees with float32 on sample photographs.
    """
    import models
    from training.weights import build_model, load_state_file, load_torchvision_weights

    info = models.get_model_info(arch)
    if info.torchvision is None:
        fits = [n for n in models.list_models() if models.get_model_info(n).torchvision == arch]
        hint = f"; did you mean {', '.join(fits)}?" if fits else ""
        raise ValueError(f"{arch} has no torchvision weight layout{hint}")
    weights = Path(weights)
    state = load_state_file(weights)
    head = state.get(f"{info.classifier}.weight")
    model_options: dict[str, Any] = {"num_classes": int(head.shape[0]) if head is not None else info.num_classes}
    if any(k.startswith(("aux1.", "aux2.")) for k in state):
        model_options["aux_logits"] = True  # torchvision's GoogLeNet files keep the auxiliary heads
    model = build_model(arch, model_options)
    load_torchvision_weights(model, state)
    model.eval()
    if model_options.get("aux_logits"):
        model_options["aux_logits"] = False  # dropped for serving (serving_copy)
    crop = info.input_size[1]
    spec = InputSpec(
        shape=list(info.input_size),
        color_mode="RGB" if info.input_size[0] == 3 else "L",
        resize=math.floor(crop / 0.875),
        crop=crop,
        interpolation="bilinear",
        mean=list(info.mean),
        std=list(info.std),
    )
    served = name or arch
    label_list = _labels_file(Path(labels) if labels else None, model_options["num_classes"])
    job = ExportJob(
        name=served,
        model=model,
        architecture=_architecture(model, model_options),
        labels=label_list,
        input=spec,
        training={
            "source": "torchvision",
            "weights": str(weights),
            "source_sha256": sha256_file(weights),
            "data": "ImageNet-1k (torchvision weights; accuracy not measured here)",
            "labels_file": str(labels) if labels else None,
        },
        description=f"{info.description} torchvision-format weights imported from {weights.name}.",
        real_inputs=_sample_images(spec),
    )
    return export_and_publish(job, Repository(options.repository), options)


def summary_line(results: Sequence[BuildResult]) -> str:
    counts = {s: sum(r.status == s for r in results) for s in ("published", "up-to-date", "failed")}
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "nothing to build"


def replace_options(options: BuildOptions, **changes: Any) -> BuildOptions:
    """``options`` with the changes that are not ``None`` (CLI flags that were not given)."""
    return dataclasses.replace(options, **{k: v for k, v in changes.items() if v is not None})
