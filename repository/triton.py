"""Triton's ``config.pbtxt`` for a model of the repository, derived from its card.

The configuration is a pure function of the card (:func:`render_config`): ``verify`` renders
it again and compares, so an edited or stale ``config.pbtxt`` is caught. Triton loads
``<version>/model.onnx`` (the float32 variant) with the onnxruntime backend; the batch
dimension is Triton's (``max_batch_size`` > 0), so ``dims`` leave it out.
"""

from __future__ import annotations

import os
from pathlib import Path

from .card import VARIANT_FILES, ModelCard, TensorSpec
from .store import TRITON_CONFIG_FILE, write_text_atomic

__all__ = ["TRITON_DTYPES", "render_config", "write_config"]

# Our dtype names -> Triton's DataType enum names (model_config.proto).
TRITON_DTYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int64": "TYPE_INT64", "uint8": "TYPE_UINT8"}


def _dims(spec: TensorSpec) -> str:
    if not spec.shape or spec.shape[0] != -1:
        raise ValueError(f"{spec.name}: the first dimension must be the dynamic batch (-1), got {spec.shape}")
    if any(d < 1 for d in spec.shape[1:]):
        raise ValueError(f"{spec.name}: only the batch dimension may be dynamic, got {spec.shape}")
    return ", ".join(str(d) for d in spec.shape[1:])


def _tensor(spec: TensorSpec, *, image: bool) -> str:
    try:
        dtype = TRITON_DTYPES[spec.dtype]
    except KeyError:
        raise ValueError(f"{spec.name}: no Triton type for dtype {spec.dtype!r}") from None
    lines = ["  {", f'    name: "{spec.name}"', f"    data_type: {dtype}"]
    if image:
        lines.append("    format: FORMAT_NCHW")
    lines += [f"    dims: [ {_dims(spec)} ]", "  }"]
    return "\n".join(lines)


def render_config(card: ModelCard) -> str:
    """The ``config.pbtxt`` text for ``card`` (Triton's onnxruntime backend, dynamic batching)."""
    batching = card.batching
    inputs = ",\n".join(_tensor(t, image=len(t.shape) == 4) for t in card.inputs)
    outputs = ",\n".join(_tensor(t, image=False) for t in card.outputs)
    dynamic = [f"  max_queue_delay_microseconds: {batching.max_queue_delay_microseconds}"]
    if batching.preferred_batch_size:
        dynamic.insert(0, f"  preferred_batch_size: [ {', '.join(map(str, batching.preferred_batch_size))} ]")
    return "\n".join(
        [
            f"# Written by cnnserve from {card.name}/model.json (repository/triton.py); rebuild instead of editing.",
            f'name: "{card.name}"',
            'platform: "onnxruntime_onnx"',
            'backend: "onnxruntime"',
            f'default_model_filename: "{VARIANT_FILES["fp32"]}"',
            f"max_batch_size: {batching.max_batch_size}",
            f"input [\n{inputs}\n]",
            f"output [\n{outputs}\n]",
            "dynamic_batching {\n" + "\n".join(dynamic) + "\n}",
            "version_policy: { latest: { num_versions: 1 } }",
            "",
        ]
    )


def write_config(model_dir: str | os.PathLike[str], card: ModelCard) -> Path:
    """Write ``<model_dir>/config.pbtxt`` atomically."""
    path = Path(model_dir) / TRITON_CONFIG_FILE
    write_text_atomic(path, render_config(card))
    return path
