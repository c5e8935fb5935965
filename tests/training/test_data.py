"""The data pipeline: digits splits and tasks, class-per-folder trees, bad input."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from repository import DigitNormalization
from training.data import (
    SPLIT_SEED,
    DataError,
    DigitsTask,
    ImageFolder,
    Preprocessing,
    _digits_arrays,
    held_out_images,
    load_data,
    parse_data_spec,
    stratified_split,
)
from training.transforms import ToTensor

from .conftest import make_tree

# --------------------------------------------------------------------------------------- digits


def test_digits_split_is_fixed_stratified_and_disjoint():
    _, targets = _digits_arrays()
    train, val, test = stratified_split(targets)
    assert len(train) + len(val) + len(test) == len(targets) == 1797
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    # Every class is split 70/10/20 to within an image.
    for part, fraction in ((train, 0.7), (val, 0.1), (test, 0.2)):
        counts = Counter(targets[part].tolist())
        for cls, total in Counter(targets.tolist()).items():
            assert abs(counts[cls] - fraction * total) <= 1
    again = stratified_split(targets, seed=SPLIT_SEED)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again, strict=True))


def test_digits_resized_replicated_and_normalised_on_train():
    grey = load_data("digits", image_size=16, in_channels=1)
    rgb = load_data("digits", image_size=32, in_channels=3)
    assert grey.sizes == rgb.sizes == {"train": 1259, "val": 179, "test": 359}
    assert grey.labels == [str(i) for i in range(10)]

    x, _ = grey.train[0]
    assert x.shape == (1, 16, 16)
    x, y = rgb.train[0]
    assert x.shape == (3, 32, 32) and 0 <= y < 10
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])  # grey replicated to RGB

    images, _ = rgb.train.batch(torch.arange(len(rgb.train)))
    assert abs(images.mean().item()) < 1e-4 and abs(images.std().item() - 1) < 1e-3
    p = rgb.preprocessing
    assert p.image_size == 32 and p.color_mode == "RGB" and p.resize == "stretch"
    assert len(p.mean) == 3 and p.mean[0] == p.mean[2] and 0 < p.std[0] < 1
    assert grey.preprocessing.color_mode == "L" and len(grey.preprocessing.mean) == 1


def test_digits_given_preprocessing_is_used_not_recomputed():
    fixed = Preprocessing(16, "L", (0.5,), (0.25,), resize="stretch", crop_pct=1.0)
    splits = load_data("digits:0-4", image_size=16, in_channels=1, preprocessing=fixed)
    # The statistics are the given ones; a digits task always adds the card's digit normalisation.
    assert dataclasses.replace(splits.preprocessing, digits=None) == fixed
    assert splits.preprocessing.digits == DigitNormalization().model_dump()
    images, _ = splits.train.batch(torch.arange(len(splits.train)))
    assert images.min().item() == pytest.approx(-2.0)  # blank pixels: (0 - 0.5) / 0.25


def test_digits_task_few_labels_per_class():
    splits = load_data("digits:5-9:10", image_size=8, in_channels=1)
    assert splits.labels == ["5", "6", "7", "8", "9"]
    assert splits.name == "digits:5-9:10"
    assert splits.sizes["train"] == 50 and splits.sizes["val"] == 50
    assert Counter(splits.train.targets.tolist()) == dict.fromkeys(range(5), 10)
    # Test is every test-split image of the five classes.
    assert 170 <= splits.sizes["test"] <= 190
    again = load_data("digits:5-9:10", image_size=8, in_channels=1)
    assert torch.equal(splits.train.images, again.train.images)


def test_limit_train_keeps_a_fixed_subset():
    a = load_data("digits", image_size=8, in_channels=1, limit_train=100)
    b = load_data("digits", image_size=8, in_channels=1, limit_train=100)
    assert len(a.train) == 100 and a.sizes["test"] == 359
    assert torch.equal(a.train.images, b.train.images)


@pytest.mark.parametrize(
    ("spec", "task"),
    [
        ("digits", DigitsTask()),
        ("digits:0-4", DigitsTask((0, 1, 2, 3, 4))),
        ("digits:5,7,9:3", DigitsTask((5, 7, 9), 3)),
        ("digits:all:20", DigitsTask(tuple(range(10)), 20)),
    ],
)
def test_parse_digits_specs(spec, task):
    assert parse_data_spec(spec) == task


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("digits:a-b", "cannot read"),
        ("digits:7", "at least 2 classes"),
        ("digits:0-12", "between 0 and 9"),
        ("digits:0-4:0", ">= 1"),
        ("digits:0-4:x", "whole number"),
        ("digits:1:2:3", "cannot read data spec"),
    ],
)
def test_bad_digits_specs_say_what_to_write(spec, message):
    with pytest.raises(DataError, match=message):
        parse_data_spec(spec)


# ---------------------------------------------------------------------------------------- folders


def test_folder_tree_split_transforms_and_skipped_files(tree: Path, caplog):
    (tree / "ants" / "empty.png").write_bytes(b"")
    (tree / "bees" / "broken.jpg").write_bytes(b"not a jpeg at all")
    (tree / "bees" / "notes.txt").write_text("not an image, ignored")
    with caplog.at_level(logging.WARNING, logger="training.data"):
        splits = load_data(tree, image_size=16, in_channels=3)
    assert "skipped 2 unreadable or empty file(s)" in caplog.text
    assert "empty.png (empty file)" in caplog.text and "broken.jpg (unreadable" in caplog.text

    assert splits.labels == ["ants", "bees", "wasps"]
    assert splits.sizes == {"train": 12, "val": 3, "test": 3}  # 6 per class: 4/1/1
    assert splits.test_split == "test"
    p = splits.preprocessing
    assert p.resize == "center_crop" and p.color_mode == "RGB" and p.image_size == 16
    assert 0 < p.mean[0] < 1 and p.mean[0] > p.mean[1]  # ants are red; statistics from train images

    torch.manual_seed(0)
    x, y = splits.train[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and y == 0
    torch.manual_seed(0)
    assert torch.equal(splits.train[0][0], x)  # seeded augmentation repeats
    a, b = splits.val[0][0], splits.val[0][0]
    assert torch.equal(a, b)  # evaluation is deterministic


def test_grey_network_reads_folders_as_grey(tree: Path):
    splits = load_data(tree, image_size=32, in_channels=1)
    assert splits.preprocessing.color_mode == "L"
    assert splits.val[0][0].shape == (1, 32, 32)


def test_train_val_layout_uses_val_as_test(tmp_path: Path):
    make_tree(tmp_path / "data" / "train", per_class=3)
    make_tree(tmp_path / "data" / "val", per_class=2)
    splits = load_data(tmp_path / "data", image_size=16)
    assert splits.sizes == {"train": 9, "val": 6, "test": 6}
    assert splits.test_split == "val"


def test_held_out_digits_are_test_images_of_their_class():
    images, targets = _digits_arrays()
    test = stratified_split(targets)[2]
    held = held_out_images("digits:5-9")
    assert [(h.label, h.index) for h in held] == [(str(c), c - 5) for c in range(5, 10) for _ in range(2)]
    for h in held:
        pixels = np.asarray(h.image)
        assert h.image.mode == "L" and pixels.shape == (8, 8)
        found = {i for i in range(len(images)) if (np.rint(images[i] * 255) == pixels).all()}
        assert found and found <= set(test.tolist()) and {str(targets[i]) for i in found} == {h.label}
    assert len(held_out_images("digits", per_class=3, max_images=7)) == 7


def test_held_out_folder_images_are_its_test_split(tree: Path):
    scanned = load_data(tree, image_size=16)
    test_files = {path for path, _ in scanned.test.samples}
    held = held_out_images(tree, per_class=5)
    assert [h.label for h in held] == ["ants", "bees", "wasps"]  # one test image per class (6 -> 4/1/1)
    for h in held:
        matches = [
            p for p in test_files if np.array_equal(np.asarray(Image.open(p).convert("RGB")), np.asarray(h.image))
        ]
        assert matches and matches[0].parent.name == h.label and h.index == scanned.labels.index(h.label)


def test_held_out_images_of_a_tree_without_test_are_its_validation_images(tmp_path: Path):
    make_tree(tmp_path / "data" / "train", per_class=3)
    make_tree(tmp_path / "data" / "val", per_class=2)
    held = held_out_images(tmp_path / "data", max_images=5)
    assert [h.label for h in held] == ["ants", "ants", "bees", "bees", "wasps"]
    val = {np.asarray(Image.open(p).convert("RGB")).tobytes() for p in (tmp_path / "data" / "val").rglob("*.*")}
    assert all(np.asarray(h.image).tobytes() in val for h in held)


def test_file_that_fails_to_decode_is_skipped_at_read_time(tmp_path: Path, caplog):
    good = tmp_path / "good.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(good.read_bytes()[:40])  # a valid header, truncated data
    dataset = ImageFolder([(bad, 0), (good, 1)], ToTensor())
    with caplog.at_level(logging.WARNING, logger="training.data"):
        x, y = dataset[0]
    assert y == 1 and x.shape == (3, 8, 8)
    assert "skipping unreadable image" in caplog.text


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"ants": 6}, "single class"),
        ({}, "no class folders"),
        ({"ants": 6, "bees": 0}, "no readable images under .*: bees"),
        ({"ants": 6, "bees": 2}, "class 1 has 2 image"),
    ],
)
def test_bad_trees_are_clear_errors(tmp_path: Path, layout: dict[str, int], message: str):
    root = tmp_path / "tree"
    root.mkdir()
    for name, count in layout.items():
        make_tree(root, {name: (90, 90, 90)}, per_class=count)
        (root / name).mkdir(exist_ok=True)
        if count == 0:
            (root / name / "zero.png").write_bytes(b"")
    with pytest.raises(DataError, match=message):
        load_data(root, image_size=16)


def test_missing_path_and_unknown_validation_class(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist; give 'digits' or a class-per-folder"):
        load_data(tmp_path / "nowhere", image_size=16)
    make_tree(tmp_path / "d" / "train", per_class=2)
    make_tree(tmp_path / "d" / "val", {"ants": (1, 2, 3), "moths": (3, 2, 1)}, per_class=1)
    with pytest.raises(DataError, match="classes not in the training tree: moths"):
        load_data(tmp_path / "d", image_size=16)
