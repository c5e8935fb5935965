"""Step 4 of a build: the reduced-precision variants, each made, checked, measured and judged against float32.

INT8 is calibrated on training images and published when its test top-1 is within
``max_accuracy_drop`` points of float32's. Float16 is judged the same way; without labelled
test data (torchvision weights) it is published when it agrees with float32 on every sample
image. A variant that is not published stays in the card with the reason, its file removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repository import VARIANT_FILES, Variant
from repository.card import AccuracyRecord, Agreement, Latencies, Precision, VariantJudgement
from repository.publish import file_variant

from .jobs import ExportJob
from .measure import benchmark, compare_sessions, evaluate_onnx, make_session
from .onnx_export import check_onnx
from .options import BuildOptions
from .quantize import export_fp16, quantize_int8

__all__ = ["VariantOutcome", "make_variant"]

log = logging.getLogger(__name__)

_FP16_NOTE = "no labelled test data: judged on its top-1 agreement with float32"


@dataclass(frozen=True)
class VariantOutcome:
    """One variant: its card entry, its judgement, and what was measured on it.

    ``checked``: the file passed ``onnx.checker`` (a variant that could not be made was not).
    """

    variant: Variant
    judgement: VariantJudgement
    checked: bool = False
    accuracy: AccuracyRecord | None = None
    speed: Latencies | None = None


@dataclass(frozen=True)
class _Measured:
    """What a variant's file computes: against float32 on the sample images, its test accuracy, its speed."""

    vs_fp32: Agreement | None
    accuracy: AccuracyRecord | None
    speed: Latencies | None


def make_variant(
    precision: Precision,
    job: ExportJob,
    fp32: Path,
    fp32_session: Any,
    fp32_top1: float | None,
    metadata: dict[str, Any],
    options: BuildOptions,
) -> VariantOutcome:
    """Make ``precision``'s file next to ``fp32``, check, measure and judge it; a rejected file is removed."""
    path = fp32.with_name(VARIANT_FILES[precision])
    if precision == "int8" and (job.calibration is None or not len(job.calibration)):
        reason = "no training images to calibrate on" + (
            "" if job.test is not None else " and no labelled test data to measure its accuracy"
        )
        variant = Variant(precision="int8", file=path.name, published=False, reason=reason)
        return VariantOutcome(variant, VariantJudgement(published=False))
    file_metadata = {**metadata, "precision": precision}
    if precision == "int8":
        quantize_int8(fp32, path, job.calibration, metadata=file_metadata, options=options.quantize)
    else:
        export_fp16(job.model, path, list(job.input.shape), metadata=file_metadata, options=options.export)
    check_onnx(path)
    measured = _measure(precision, job, path, fp32_session, options)
    judgement, reason = _judge(precision, measured, fp32_top1, options.quantize.max_accuracy_drop)
    top1 = measured.accuracy.top1 if measured.accuracy is not None else None
    if judgement.published:
        variant = file_variant(path, precision, test_top1=top1)
    else:
        log.warning("%s: %s variant not published: %s", job.name, precision, reason)
        path.unlink(missing_ok=True)
        variant = Variant(precision=precision, file=path.name, published=False, test_top1=top1, reason=reason)
    return VariantOutcome(variant, judgement, checked=True, accuracy=measured.accuracy, speed=measured.speed)


def _measure(precision: Precision, job: ExportJob, path: Path, fp32_session: Any, options: BuildOptions) -> _Measured:
    """The variant's file through ONNX Runtime: against float32, on the test set (when labelled), its speed (INT8)."""
    session = make_session(path, options.threads)
    probe = job.real_inputs
    compared = probe is not None and len(probe) > 0
    vs_fp32 = compare_sessions(fp32_session, session, probe[: options.export.real_inputs]) if compared else None
    # Only INT8 is timed: float16 on a CPU is emulated, its timing would say nothing about the GPUs it is for.
    speed = (
        benchmark(session, job.input.shape, (1, 32), seconds=0.1 if job.quick else 0.5) if precision == "int8" else None
    )
    accuracy = evaluate_onnx(session, *job.test) if job.test is not None else None
    return _Measured(vs_fp32, accuracy, speed)


def _judge(
    precision: Precision, measured: _Measured, fp32_top1: float | None, limit: float
) -> tuple[VariantJudgement, str | None]:
    """Whether the variant is published, and if not, why: on its test top-1 against float32's when both exist."""
    if measured.accuracy is not None and fp32_top1 is not None:
        top1 = measured.accuracy.top1
        change = round(top1 - fp32_top1, 3)
        published = change >= -limit
        reason = (
            None
            if published
            else f"test top-1 {top1:.2f}% is {-change:.2f} points below float32's {fp32_top1:.2f}% (limit {limit:g})"
        )
        return _judgement(measured, published, top1_change=change), reason
    if precision == "fp16" and measured.vs_fp32 is not None:
        agreement = measured.vs_fp32.top1_agreement
        published = agreement == 1.0
        reason = None if published else f"top-1 agreement with float32 is {agreement:.0%} on the sample images"
        return _judgement(measured, published, note=_FP16_NOTE), reason
    return _judgement(measured, False), "no labelled test data to measure its accuracy"


def _judgement(measured: _Measured, published: bool, **fields: float | str) -> VariantJudgement:
    # Only what was measured: a field left out stays out of the card (VariantJudgement writes the fields it is given).
    compared = {"vs_fp32": measured.vs_fp32} if measured.vs_fp32 is not None else {}
    return VariantJudgement(**compared, **fields, published=published)
