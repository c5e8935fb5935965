"""Small model cards and repositories built by hand, without torch, for the contract's tests.

The repository contract never opens an ONNX file (it checks sizes and hashes), so a version's
``model.onnx`` here is a few random bytes: what matters is that the card describes it exactly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from repository import (
    SAMPLES_DIR,
    Architecture,
    Batching,
    InputSpec,
    LayerRecord,
    ModelCard,
    Repository,
    SampleImage,
    SummaryRecord,
    TensorSpec,
    VersionCard,
    sha256_file,
)
from repository.publish import file_variant

CREATED = "2024-01-02T03:04:05+00:00"

# conv 2@3x3 over 1x4x4 -> 2x2x2, flatten, fc 8 -> 3: every count worked out by hand.
SUMMARY = SummaryRecord(
    model="tiny",
    input_shape=[1, 4, 4],
    layers=[
        LayerRecord(
            name="conv",
            type="Conv2d",
            input_shape=[1, 4, 4],
            output_shape=[2, 2, 2],
            params=20,
            trainable_params=20,
            macs=72,
            activations=8,
        ),
        LayerRecord(
            name="flatten",
            type="Flatten",
            input_shape=[2, 2, 2],
            output_shape=[8],
            params=0,
            trainable_params=0,
            macs=0,
            activations=8,
        ),
        LayerRecord(
            name="fc",
            type="Linear",
            input_shape=[8],
            output_shape=[3],
            params=27,
            trainable_params=27,
            macs=24,
            activations=3,
        ),
    ],
    total_params=47,
    trainable_params=47,
    non_trainable_params=0,
    total_macs=96,
    param_bytes=188,
    activation_bytes=140,
)


def card_fields(name: str = "tiny", **updates: Any) -> dict[str, Any]:
    """Every :class:`ModelCard` field but ``versions`` and ``created``, as ``with_version`` takes them."""
    fields: dict[str, Any] = {
        "name": name,
        "description": "a hand-built card for the repository tests",
        "architecture": Architecture(name="tiny", family="tests", paper="none"),
        "labels": ["a", "b", "c"],
        "input": InputSpec(shape=[1, 4, 4], color_mode="L", resize=4, crop=4, mean=[0.5], std=[0.5]),
        "inputs": [TensorSpec(name="input", shape=[-1, 1, 4, 4])],
        "outputs": [TensorSpec(name="logits", shape=[-1, 3]), TensorSpec(name="probabilities", shape=[-1, 3])],
        "batching": Batching(max_batch_size=8, max_queue_delay_microseconds=700, preferred_batch_size=[4, 8]),
        "summary": SUMMARY,
        "canonical_summary": SUMMARY,
    }
    fields.update(updates)
    return fields


def write_version_files(folder: Path, size: int = 64) -> None:
    """The float32 file of a version: random bytes standing for an ONNX graph."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(os.urandom(size))


def version_card(folder: Path, version: int) -> VersionCard:
    """The card entry of the files in ``folder``: a published fp32 variant and an unpublished fp16 one."""
    return VersionCard(
        version=version,
        created=CREATED,
        variants={
            "fp32": file_variant(folder / "model.onnx", "fp32"),
            "fp16": file_variant(folder / "model.fp16.onnx", "fp16", published=False, reason="not built"),
        },
    )


def write_samples(folder: Path, count: int = 2) -> list[SampleImage]:
    """``count`` sample images in ``folder/samples`` (bytes standing for PNGs) and their records."""
    (folder / SAMPLES_DIR).mkdir(parents=True, exist_ok=True)
    records = []
    for k in range(count):
        path = folder / SAMPLES_DIR / f"{k}-{'abc'[k % 3]}.png"
        path.write_bytes(os.urandom(32))
        records.append(SampleImage(file=path.name, label="abc"[k % 3], index=k % 3, sha256=sha256_file(path)))
    return records


def write_model(root: Path, name: str = "tiny", versions: tuple[int, ...] = (1,)) -> ModelCard:
    """``name`` with the files of ``versions`` and its card, in the repository at ``root``."""
    repository = Repository(root)
    entries = {}
    for version in versions:
        folder = repository.model_dir(name) / str(version)
        write_version_files(folder)
        entries[version] = version_card(folder, version)
    card = ModelCard(**card_fields(name), versions=entries, created=CREATED)
    repository.write_card(card)
    return card
