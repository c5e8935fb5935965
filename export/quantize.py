"""Reduced-precision variants of an exported model: INT8 (static QDQ) and float16.

INT8 is ONNX Runtime's static quantization in the QDQ format: weights quantized per output
channel (signed 8-bit), activations (unsigned 8-bit) with ranges calibrated on training
images, so no test image is seen. The model is first pre-processed (shape inference and
graph optimisation) as ONNX Runtime recommends. Softmax stays float32 (it is not in the QDQ
operator set), so ``probabilities`` keep their precision.

Float16 is exported from PyTorch directly (``network.half()`` between float32 casts), which
gives a clean, topologically sorted graph with float32 input and outputs: clients and the
service's decoding stay the same; the GPU does the float16 arithmetic.

Whether a variant is published is decided by the caller on its measured accuracy
(:attr:`QuantizeOptions.max_accuracy_drop`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from .onnx_export import INPUT_NAME, ExportOptions, export_onnx, write_metadata

__all__ = ["QuantizeOptions", "export_fp16", "quantize_int8"]

log = logging.getLogger(__name__)

_CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


@dataclass(frozen=True)
class QuantizeOptions:
    """How the variants are made and judged. Recorded in the card: a change means a rebuild.

    ``calibration_images`` training images (at most) calibrate the activation ranges, fed in
    batches of ``calibration_batch``. A variant whose test top-1 is more than
    ``max_accuracy_drop`` points below float32's is not published.
    """

    calibration_images: int = 256
    calibration_batch: int = 32
    calibration_method: str = "minmax"
    per_channel: bool = True
    max_accuracy_drop: float = 1.0
    variants: tuple[str, ...] = ("int8", "fp16")

    def __post_init__(self) -> None:
        if self.calibration_images < 1 or self.calibration_batch < 1:
            raise ValueError(
                f"calibration_images and calibration_batch must be >= 1, "
                f"got {self.calibration_images}, {self.calibration_batch}"
            )
        if self.calibration_method not in _CALIBRATION_METHODS:
            raise ValueError(
                f"calibration_method must be one of {', '.join(_CALIBRATION_METHODS)}, got {self.calibration_method!r}"
            )
        if self.max_accuracy_drop < 0:
            raise ValueError(f"max_accuracy_drop must be >= 0, got {self.max_accuracy_drop}")
        bad = set(self.variants) - {"int8", "fp16"}
        if bad:
            raise ValueError(f"variants must be among int8, fp16; got {', '.join(sorted(bad))}")
        object.__setattr__(self, "variants", tuple(self.variants))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["variants"] = list(self.variants)
        return data


class _Batches:
    """ONNX Runtime's ``CalibrationDataReader`` protocol over an in-memory array."""

    def __init__(self, images: np.ndarray, batch_size: int, input_name: str) -> None:
        self._images, self._batch, self._input = images, batch_size, input_name
        self._iter: Iterator[dict[str, np.ndarray]] = self._batches()

    def _batches(self) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(self._images), self._batch):
            yield {self._input: np.ascontiguousarray(self._images[start : start + self._batch], dtype=np.float32)}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = self._batches()


def quantize_int8(
    fp32_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    calibration: np.ndarray,
    *,
    metadata: Mapping[str, Any] | None = None,
    options: QuantizeOptions = QuantizeOptions(),
    input_name: str = INPUT_NAME,
) -> Path:
    """Write the static INT8 (QDQ, per-channel) quantization of ``fp32_path`` to ``out_path``.

    ``calibration`` holds preprocessed training images (N, C, H, W) for the graph's ``input_name``; the
    first ``options.calibration_images`` of them are used.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration) == 0:
        raise ValueError("INT8 calibration needs at least one training image; pass the training data")
    images = np.asarray(calibration[: options.calibration_images], dtype=np.float32)
    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[options.calibration_method]

    class Reader(_Batches, CalibrationDataReader):
        pass

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cnnserve-int8-", dir=out_path.parent) as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quantized = Path(tmp) / "quantized.onnx"
        quant_pre_process(os.fspath(fp32_path), os.fspath(prepared), skip_symbolic_shape=True)
        quantize_static(
            os.fspath(prepared),
            os.fspath(quantized),
            Reader(images, options.calibration_batch, input_name),
            quant_format=QuantFormat.QDQ,
            per_channel=options.per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=method,
        )
        # Pre-processing and quantization drop the file's metadata: put it back.
        write_metadata(quantized, dict(metadata or {}))
        os.replace(quantized, out_path)
    log.debug("quantized %s -> %s with %d calibration images", fp32_path, out_path, len(images))
    return out_path


def export_fp16(
    model: nn.Module,
    out_path: str | os.PathLike[str],
    input_shape: Sequence[int],
    *,
    metadata: Mapping[str, Any] | None = None,
    options: ExportOptions = ExportOptions(),
) -> Path:
    """Export ``model`` with float16 weights and arithmetic, float32 ``input``/``logits``/``probabilities``."""
    return export_onnx(model, out_path, input_shape, metadata=metadata, options=options, half=True)
