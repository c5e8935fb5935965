"""Steps 3-5 of a build: export an :class:`~export.jobs.ExportJob`, verify it, make its variants, publish it.

The float32 model must pass ``onnx.checker`` and agree with PyTorch (:func:`~export.measure.verify_parity`)
or nothing is published. Its test accuracy is measured again through ONNX Runtime, the variants
are judged against it (:mod:`export.variants`), and the version is published with a card that
records all of it (:class:`~repository.card.VerificationRecord`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from repository import VARIANT_FILES, LayerOutputs, Repository, SummaryRecord, TensorSpec, Variant, VersionCard
from repository.card import (
    AccuracyRecord,
    AccuracySource,
    FoldedPooling,
    Latencies,
    ParityRecord,
    Precision,
    SpeedRecord,
    VerificationRecord,
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

from .jobs import ExportJob
from .layers import record_layer_outputs
from .measure import benchmark, evaluate_onnx, make_session, verify_parity
from .onnx_export import ExportError, check_onnx, export_onnx, graph_signature, read_metadata, serving_copy
from .options import BuildOptions
from .samples import write_samples
from .variants import VariantOutcome, make_variant

__all__ = ["export_and_publish"]


@dataclass(frozen=True)
class _Float32:
    """The float32 model as exported and measured: what the variants are judged against."""

    parity: ParityRecord
    folded: FoldedPooling | None
    accuracy: AccuracyRecord | None
    speed: Latencies
    handwriting: dict[str, AccuracyRecord] | None = None


@dataclass(frozen=True)
class _Verified:
    """A version's files, checked and judged: what its card needs besides the job."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    variants: dict[Precision, Variant]
    verification: VerificationRecord
    layer_outputs: LayerOutputs


def export_and_publish(
    job: ExportJob, repository: Repository, options: BuildOptions, step: Callable[[str], None] = lambda _: None
) -> int:
    """Export, verify and publish ``job`` as the next version of ``job.name``; returns that version.

    Raises :class:`ExportError` (nothing published) when the float32 model fails its checks.
    """
    previous = load_previous(repository, job.name)
    version = next_version(previous)
    created = now()
    staged = staging_dir(repository, job.name)
    try:
        net = serving_copy(job.model)
        verified = _export_and_verify(job, staged, _file_metadata(job, version, created), net, options, step)
        step("publishing")
        entry = VersionCard(
            version=version,
            created=created,
            variants=verified.variants,
            verification=verified.verification,
            training=job.training,
            samples=write_samples(job.samples, staged),
            layer_outputs=verified.layer_outputs,
        )
        card = with_version(_card_fields(job, net, verified, options), previous, entry)
        publish_version(repository, card, staged)
        return version
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)


def _file_metadata(job: ExportJob, version: int, created: str) -> dict[str, Any]:
    """What every ONNX file of the version says about itself (each adds its precision)."""
    return {
        "name": job.name,
        "version": version,
        "architecture": job.architecture.name,
        "labels": job.labels,
        "input": job.input.model_dump(mode="json"),
        "quick": job.quick,
        "created": created,
        "description": job.description,
    }


def _export_and_verify(
    job: ExportJob,
    staged: Path,
    metadata: dict[str, Any],
    net: nn.Module,
    options: BuildOptions,
    step: Callable[[str], None],
) -> _Verified:
    """Export float32 into ``staged`` and verify it, then make and judge each variant next to it."""
    fp32 = staged / VARIANT_FILES["fp32"]
    shape = list(job.input.shape)
    step("exporting float32 ONNX")
    export_onnx(job.model, fp32, shape, metadata={**metadata, "precision": "fp32"}, options=options.export)
    step("verifying float32")
    check_onnx(fp32)
    folded = read_metadata(fp32).get("folded_pooling")
    inputs, outputs = graph_signature(fp32)
    session = make_session(fp32, options.threads)
    parity = verify_parity(job.model, session, shape, job.real_inputs, options=options.export, net=net)
    if not parity.passed:
        raise ExportError(
            f"{job.name}: ONNX Runtime differs from PyTorch (max |logit diff| {parity.max_abs_diff:.3g} > "
            f"{parity.tolerance:.3g}, top-1 agreement {parity.top1_agreement:.2%}); nothing published. "
            "Try another --opset or report the network's ops."
        )
    step("recording the layers' outputs")
    layer_outputs = record_layer_outputs(
        net, fp32, shape, job.real_inputs, options=options.export, folded=folded, threads=options.threads
    )
    accuracy = evaluate_onnx(session, *job.test) if job.test is not None else None
    speed = benchmark(session, shape, (1, 32), seconds=0.1 if job.quick else 0.5)
    handwriting = {p: evaluate_onnx(session, *data) for p, data in job.handwriting.items()} if job.handwriting else None
    float32 = _Float32(parity, FoldedPooling.model_validate(folded) if folded else None, accuracy, speed, handwriting)
    top1 = accuracy.top1 if accuracy is not None else None
    outcomes: dict[Precision, VariantOutcome] = {}
    for precision in options.quantize.variants:
        step(f"{precision} variant")
        outcomes[precision] = make_variant(precision, job, fp32, session, top1, metadata, options)
    variants = {"fp32": file_variant(fp32, "fp32", test_top1=top1), **{p: o.variant for p, o in outcomes.items()}}
    return _Verified(inputs, outputs, variants, _verification(job, float32, outcomes, options), layer_outputs)


def _verification(
    job: ExportJob, fp32: _Float32, outcomes: dict[Precision, VariantOutcome], options: BuildOptions
) -> VerificationRecord:
    """The card's record of the checks: float32's, then each variant's, in the order they were made."""
    accuracy: dict[AccuracySource, AccuracyRecord] = {}
    if job.reference is not None:
        accuracy["pytorch"] = job.reference
    if fp32.accuracy is not None:
        accuracy["fp32"] = fp32.accuracy
    accuracy |= {p: o.accuracy for p, o in outcomes.items() if o.accuracy is not None}
    # Only the variants that were timed get a speed entry (SpeedRecord writes the fields it is given).
    timed = {p: o.speed for p, o in outcomes.items() if o.speed is not None}
    return VerificationRecord(
        onnx_checker={"fp32": "passed", **{p: "passed" for p, o in outcomes.items() if o.checked}},
        parity=fp32.parity,
        accuracy=accuracy,
        **({"handwriting": fp32.handwriting} if fp32.handwriting else {}),
        variants={p: o.judgement for p, o in outcomes.items()},
        speed=SpeedRecord(device="cpu", threads=options.threads, fp32=fp32.speed, **timed),
        export_options=options.export_key(),
        folded_pooling=fp32.folded,
        tools=_tools(),
        opset=options.export.opset,
    )


def _card_fields(job: ExportJob, net: nn.Module, verified: _Verified, options: BuildOptions) -> dict[str, Any]:
    """Every field of the model card but its versions (see :func:`repository.publish.with_version`)."""
    return {
        "name": job.name,
        "description": job.description,
        "architecture": job.architecture,
        "labels": job.labels,
        "input": job.input,
        "inputs": verified.inputs,
        "outputs": verified.outputs,
        "batching": options.batching,
        "quick": job.quick,
        "summary": _summary(net, job.model, job.input.shape),
        "canonical_summary": _canonical_summary(job.architecture.name),
    }


def _summary(net: nn.Module, trained: nn.Module, shape: Sequence[int]) -> SummaryRecord:
    """The served network's summary, with training's trainable/frozen split.

    ``net`` is the serving copy, every parameter frozen; ``trained`` (the job's model) has them as
    training left them, so those that trained are counted trainable (Keras' summary after transfer
    learning: the new head trainable, the backbone not), not the export's freezing.
    """
    import models

    trainable = {name for name, p in trained.named_parameters() if p.requires_grad}
    params = dict(net.named_parameters())
    for name, p in params.items():
        p.requires_grad_(name in trainable)
    try:
        return SummaryRecord.model_validate(models.summarize(net, tuple(shape)).to_dict())
    finally:
        net.requires_grad_(False)


def _canonical_summary(name: str) -> SummaryRecord:
    import models

    return SummaryRecord.model_validate(models.canonical_summary(name).to_dict())


def _tools() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    return {"torch": str(torch.__version__), "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}
