"""The card's typed records of training and verification read back exactly what was written.

Cards carry digests of their own JSON (``repository.publish.card_digests``), so a card read and
written again must give the same JSON: no ``null`` added for a field its writer left out, no
field dropped, no int turned into a float. ``tests/data/published_cards.json`` holds cards
published before these records were typed (a checkpoint build and a torchvision import, their
per-layer summaries trimmed and the digests sealed again by that code).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from repository import CARD_FILE, ModelCard, Repository, Variant, VersionCard
from repository.card import TrainingRecord, VerificationRecord
from repository.publish import card_digests, check_digests

PUBLISHED_CARDS = Path(__file__).parents[1] / "data" / "published_cards.json"


def published_cards() -> dict[str, dict[str, Any]]:
    return json.loads(PUBLISHED_CARDS.read_text())


def dumped(card: ModelCard) -> str:
    """The card as ``Repository.write_card`` writes it (key order kept, so a reordered field shows too)."""
    return json.dumps(card.model_dump(mode="json"), indent=2) + "\n"


@pytest.mark.parametrize("name", ["lenet5", "resnet18"])
def test_a_built_card_reads_back_to_the_same_bytes(quick_repository: Path, name: str) -> None:
    text = (quick_repository / name / CARD_FILE).read_text()
    card = ModelCard.model_validate_json(text)
    assert dumped(card) == text
    assert check_digests(card) == []
    version = card.versions[card.latest_version]
    assert version.verification.digests == card_digests(card, version)


@pytest.mark.parametrize("name", ["lenet5", "resnet18-imagenet"])
def test_a_card_published_before_the_records_still_verifies(name: str) -> None:
    raw = published_cards()[name]
    card = ModelCard.model_validate(raw)
    assert dumped(card) == json.dumps(raw, indent=2) + "\n"
    assert check_digests(card) == []


def test_the_records_read_both_sources_of_weights() -> None:
    cards = {name: ModelCard.model_validate(raw) for name, raw in published_cards().items()}
    built, imported = cards["lenet5"].versions[1], cards["resnet18-imagenet"].versions[1]
    assert built.training.source == "checkpoint" and built.training.metrics.test_top1 > 0
    assert built.training.best_epoch == 2 and built.training.recipe["optimizer"] == "adam"
    assert built.verification.top1("fp32") == built.variants["fp32"].test_top1
    assert built.verification.speed.int8["latency_ms_b1"] > 0 and built.verification.folded_pooling is None
    assert imported.training.source == "torchvision" and imported.training.metrics is None
    assert imported.verification.accuracy == {} and imported.verification.top1("fp32") is None
    assert imported.verification.parity.passed and imported.verification.speed.int8 is None
    judged = imported.verification.variants
    assert judged["int8"].model_dump() == {"published": False}
    assert judged["fp16"].published and judged["fp16"].vs_fp32.top1_agreement == 1.0


def _version(raw: dict[str, Any]) -> dict[str, Any]:
    return raw["versions"]["1"]


EDITS: dict[str, Callable[[dict[str, Any]], object]] = {
    # An older card: training without "machine", verification without "folded_pooling".
    "fields an older build did not write": lambda raw: (
        _version(raw)["training"].pop("machine"),
        _version(raw)["verification"].pop("folded_pooling"),
    ),
    "an int where floats are usual": lambda raw: _version(raw)["verification"]["parity"].update(atol=1, tolerance=1),
    "an int among the training metrics": lambda raw: _version(raw)["training"]["metrics"].update(test_top1=100),
    "explicit nulls": lambda raw: _version(raw)["training"].update(seconds=None, best_epoch=None),
    # VGG at the digits' size: the keys come sorted, from the ONNX file's JSON metadata.
    "a folded pooling": lambda raw: _version(raw)["verification"].update(
        folded_pooling={"grid": [7, 7], "layer": "classifier.1", "weights_after": 5120, "weights_before": 250880}
    ),
}


@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
def test_what_was_written_is_what_is_read(edit: str) -> None:
    raw = published_cards()["lenet5"]
    EDITS[edit](raw)
    card = ModelCard.model_validate_json(json.dumps(raw))
    assert json.dumps(card.model_dump(mode="json")) == json.dumps(raw)


def test_an_edited_record_breaks_the_digest() -> None:
    raw = published_cards()["lenet5"]
    _version(raw)["training"]["metrics"]["test_top1"] = 99.9
    [problem] = check_digests(ModelCard.model_validate(raw))
    assert "version 1's entry in model.json was changed after publishing" in problem


UNKNOWN_KEYS: dict[str, Callable[[dict[str, Any]], object]] = {
    "training": lambda v: v["training"].update(learning_rate=0.1),
    "training metrics": lambda v: v["training"]["metrics"].update(test_top3=80.0),
    "verification": lambda v: v["verification"].update(notes="by hand"),
    "parity": lambda v: v["verification"]["parity"]["random"].update(mean_abs_diff=0.0),
    "accuracy": lambda v: v["verification"]["accuracy"]["fp32"].update(top3=90.0),
    "accuracy of an unknown precision": lambda v: v["verification"]["accuracy"].update(int4={"top1": 1.0}),
    "variant judgement": lambda v: v["verification"]["variants"]["int8"].update(reason="slow"),
    "speed": lambda v: v["verification"]["speed"].update(fp16={"latency_ms_b1": 1.0}),
    "digests": lambda v: v["verification"]["digests"].update(files="0" * 64),
}


@pytest.mark.parametrize("where", UNKNOWN_KEYS, ids=list(UNKNOWN_KEYS))
def test_unknown_keys_are_rejected(where: str) -> None:
    raw = published_cards()["lenet5"]
    UNKNOWN_KEYS[where](_version(raw))
    with pytest.raises(ValidationError, match=r"Extra inputs are not permitted|Input should be"):
        ModelCard.model_validate(raw)


def test_a_version_without_records_writes_empty_ones() -> None:
    version = VersionCard(
        version=1,
        created="2024-01-02T03:04:05+00:00",
        variants={"fp32": Variant(precision="fp32", file="model.onnx")},
    )
    data = version.model_dump(mode="json")
    assert data["training"] == {} and data["verification"] == {}
    again = VersionCard.model_validate_json(json.dumps(data))
    assert again.training == TrainingRecord() and again.verification == VerificationRecord()
    assert again.model_dump(mode="json") == data


def test_a_version_with_samples_writes_them_and_reads_them_back() -> None:
    raw = published_cards()["lenet5"]
    sample = {"file": "0-0.png", "label": "0", "index": 0, "sha256": "0" * 64}
    _version(raw)["samples"] = [sample]
    card = ModelCard.model_validate_json(json.dumps(raw))
    assert card.versions[1].samples[0].model_dump() == sample
    assert json.dumps(card.model_dump(mode="json")) == json.dumps(raw)


def test_a_card_read_from_a_repository_is_the_card_written(tmp_path: Path) -> None:
    card = ModelCard.model_validate(published_cards()["resnet18-imagenet"])
    Repository(tmp_path).write_card(card)
    assert Repository(tmp_path).load_card(card.name) == card
    assert (tmp_path / card.name / CARD_FILE).read_text() == dumped(card)


def test_a_version_with_its_layers_reads_back_to_the_same_bytes() -> None:
    raw = published_cards()["lenet5"]
    _version(raw)["layer_outputs"] = {
        "file": "model.onnx",
        "kind": "real",
        "inputs": 4,
        "atol": 0.0001,
        "rtol": 1e-05,
        "layers": [
            {
                "name": "features.0",
                "type": "Conv2d",
                "tensor": "conv2d",
                "shape": [6, 28, 28],
                "block": True,
                "weight": "network.features.0.weight",
                "max_abs_diff": 0,  # an int stays an int: the digest is of the JSON
                "tolerance": 0.0001,
            }
        ],
        "left_out": {"classifier.0": "no node of its own"},
    }
    card = ModelCard.model_validate_json(json.dumps(raw))
    assert json.dumps(card.model_dump(mode="json")) == json.dumps(raw)
    record = card.versions[1].layer_outputs
    assert record.find("features.0").holds is None and record.find("features.9") is None
    # A version without the record (published before it) writes no key for it, not a null.
    assert "layer_outputs" not in published_cards()["lenet5"]["versions"]["1"]
    assert "layer_outputs" not in ModelCard.model_validate(published_cards()["lenet5"]).versions[1].model_dump()
