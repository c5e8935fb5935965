"""Datasets for training: scikit-learn's digits (the default task) and class-per-folder trees.

``load_data(spec, image_size=..., in_channels=...)`` returns :class:`DataSplits`: train,
validation and test datasets, the class names, and the :class:`Preprocessing` a deployed
model must apply to match training (it is stored in every checkpoint).

Data specs:

``digits``
    scikit-learn's 1,797 handwritten 8x8 digits, 10 classes, nothing downloaded. A fixed,
    stratified 70/10/20 train/validation/test split (seed :data:`SPLIT_SEED`, whatever the
    training seed), resized once to the network's resolution, grey replicated to RGB for
    3-channel networks, normalised with the mean and std of the training split.
``digits:CLASSES[:K]``
    A task on a subset of the digits: ``CLASSES`` is ``0-4``, ``5,7,9`` or ``all``; ``K``
    keeps K labelled images per class for training (and K per class for validation), drawn
    once with a fixed seed. Test is every test-split image of those classes. The transfer
    experiment uses ``digits:0-4`` as the source task and ``digits:5-9:10`` as the target.
``PATH``
    A class-per-folder image tree (``PATH/<class>/<image>``), split 70/10/20 (stratified,
    fixed seed), or ``PATH/train/<class>/...`` with ``PATH/val`` (and optionally
    ``PATH/test``; without it the validation images are also the test images). Training
    images get random resized crops and horizontal flips, evaluation images a resize and centre
    crop. Unreadable or empty files are reported and skipped.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler

from .digit_ink import DIGITS, handwriting_augment
from .transforms import eval_transform, random_affine, train_transform

__all__ = [
    "IMAGE_EXTENSIONS",
    "SPLIT_FRACTIONS",
    "SPLIT_SEED",
    "DataError",
    "DataSplits",
    "DigitsTask",
    "FolderScan",
    "HeldOutImage",
    "ImageFolder",
    "Preprocessing",
    "TensorImages",
    "eval_loader",
    "held_out_images",
    "load_data",
    "load_digits_task",
    "load_image_folder",
    "parse_data_spec",
    "scan_image_folder",
    "stratified_split",
    "train_loader",
]

log = logging.getLogger(__name__)

SPLIT_SEED = 0
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
_VAL_DIRS = ("val", "valid", "validation")
_STATS_SAMPLE = 256


# (batch, generator, (rank, world_size)) -> augmented batch
BatchAugment = Callable[[Tensor, torch.Generator, tuple[int, int]], Tensor]


class DataError(ValueError):
    """The data cannot be used as given; the message says what to change."""


@dataclass(frozen=True)
class Preprocessing:
    """What an image goes through before the network, recorded with the weights.

    ``color_mode`` is Pillow's (``"L"`` grey, ``"RGB"``). ``resize`` is ``"stretch"`` (the whole
    image resized to ``image_size`` squared: digits) or ``"center_crop"`` (shorter side to
    ``image_size / crop_pct``, then the centre ``image_size`` square). Pixels are scaled to
    [0, 1] (digits: value / 16), then ``(x - mean) / std`` per channel. ``digits`` (a
    ``repository.DigitNormalization`` as a dict) is set for digits tasks: how a served image is
    made into the data set's picture of a digit first (``training.digit_ink``).
    """

    image_size: int
    color_mode: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: str = "center_crop"
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    digits: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.color_mode not in ("L", "RGB"):
            raise ValueError(f"color_mode must be 'L' or 'RGB', got {self.color_mode!r}")
        if self.resize not in ("stretch", "center_crop"):
            raise ValueError(f"resize must be 'stretch' or 'center_crop', got {self.resize!r}")
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"{self.color_mode} takes {self.channels} mean/std values, got {self.mean} / {self.std}")

    @property
    def channels(self) -> int:
        return 1 if self.color_mode == "L" else 3

    def with_channels(self, channels: int) -> Preprocessing:
        """The same statistics for a network with ``channels`` inputs (grey <-> RGB)."""
        if channels == self.channels:
            return self
        mode = "L" if channels == 1 else "RGB"
        mean, std = (sum(self.mean) / len(self.mean),) * channels, (sum(self.std) / len(self.std),) * channels
        return dataclasses.replace(self, color_mode=mode, mean=mean, std=std)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class TensorImages(Dataset):
    """Preprocessed images held in memory as one (N, 1 or C, H, W) tensor.

    Grey images are stored once and expanded to ``channels`` when read, so an RGB network's
    digits cost no more memory than a grey one's.
    """

    def __init__(self, images: Tensor, targets: Tensor, channels: int) -> None:
        if images.shape[0] != targets.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {targets.shape[0]} targets")
        self.images, self.targets, self.channels = images, targets.long(), channels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.batch(torch.tensor([index]))[0][0], int(self.targets[index])

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        x = self.images[indices]
        if x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1)
        return x, self.targets[indices]

    @property
    def labels_array(self) -> np.ndarray:
        return self.targets.numpy()


class ImageFolder(Dataset):
    """``(path, label)`` samples read with Pillow and passed through ``transform``.

    A file that fails to decode here (the scan only checks headers) is logged and replaced by
    the next readable sample, so one bad file never stops a run.
    """

    def __init__(self, samples: Sequence[tuple[Path, int]], transform: Callable, color_mode: str = "RGB") -> None:
        if not samples:
            raise DataError("no images to read")
        self.samples, self.transform, self.color_mode = list(samples), transform, color_mode
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        for offset in range(len(self.samples)):
            i = (index + offset) % len(self.samples)
            if i in self._bad:
                continue
            path, label = self.samples[i]
            try:
                with Image.open(path) as img:
                    image = img.convert(self.color_mode)
            except (OSError, UnidentifiedImageError, ValueError) as err:
                self._bad.add(i)
                log.warning("skipping unreadable image %s: %s", path, err)
                continue
            return self.transform(image), label
        raise DataError("none of the images could be read; check the files")

    @property
    def labels_array(self) -> np.ndarray:
        return np.array([label for _, label in self.samples])


@dataclass
class DataSplits:
    """Train/validation/test datasets of one task and how their images were prepared."""

    train: Dataset
    val: Dataset
    test: Dataset
    labels: list[str]
    preprocessing: Preprocessing
    name: str
    test_split: str = "test"
    # Batch augmentation of in-memory training data (``None``: none, or done per image).
    augment: BatchAugment | None = field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}  # type: ignore[arg-type]

    def describe(self) -> dict[str, Any]:
        return {"dataset": self.name, "split_sizes": self.sizes, "test_split": self.test_split, "labels": self.labels}


# ---------------------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class DigitsTask:
    """``digits[:CLASSES[:K]]``: some of the ten digits, with K labelled images per class."""

    classes: tuple[int, ...] = tuple(range(10))
    per_class: int | None = None

    @property
    def spec(self) -> str:
        if self.classes == tuple(range(10)) and self.per_class is None:
            return "digits"
        runs = _ranges(self.classes)
        return f"digits:{runs}" + (f":{self.per_class}" if self.per_class is not None else "")


def _ranges(classes: Sequence[int]) -> str:
    c = list(classes)
    if c == list(range(c[0], c[-1] + 1)) and len(c) > 1:
        return f"{c[0]}-{c[-1]}"
    return ",".join(map(str, c))


_DIGITS_SPEC = re.compile(r"^digits(?::(?P<classes>[^:]*))?(?::(?P<k>[^:]*))?$")


def parse_data_spec(spec: str | os.PathLike) -> DigitsTask | Path:
    """``digits``, ``digits:5-9:10`` or a folder path."""
    text = os.fspath(spec)
    if not text.startswith("digits"):
        return Path(text)
    m = _DIGITS_SPEC.match(text)
    if m is None:
        if Path(text).exists():
            return Path(text)
        raise DataError(f"cannot read data spec {text!r}; use digits, digits:0-4, digits:5-9:10 or a folder path")
    classes_text, k_text = m.group("classes"), m.group("k")
    try:
        if classes_text in (None, "", "all"):
            classes = tuple(range(10))
        else:
            picked: list[int] = []
            for part in classes_text.split(","):
                lo, _, hi = part.partition("-")
                picked.extend(range(int(lo), int(hi or lo) + 1))
            classes = tuple(sorted(set(picked)))
        per_class = None if k_text in (None, "") else int(k_text)
    except ValueError:
        raise DataError(
            f"cannot read data spec {text!r}: classes are like 0-4 or 5,7,9 and K a whole number (digits:5-9:10)"
        ) from None
    if not classes or any(not 0 <= c <= 9 for c in classes):
        raise DataError(f"digits classes must be between 0 and 9, got {classes_text!r} in {text!r}")
    if len(classes) < 2:
        raise DataError(f"a classification task needs at least 2 classes, {text!r} names {len(classes)}")
    if per_class is not None and per_class < 1:
        raise DataError(f"images per class must be >= 1, got {per_class} in {text!r}")
    return DigitsTask(classes, per_class)


def load_data(
    spec: str | os.PathLike,
    *,
    image_size: int,
    in_channels: int = 3,
    preprocessing: Preprocessing | None = None,
    limit_train: int | None = None,
    augment: str = "none",
) -> DataSplits:
    """The splits of ``spec`` prepared for a network taking ``in_channels`` x ``image_size``^2.

    ``preprocessing`` (from a source checkpoint when fine-tuning) fixes the statistics instead
    of computing them on the training split. ``limit_train`` keeps that many training images
    (a fixed random subset; for quick runs and tests). ``augment`` is the recipe's in-memory
    augmentation (``"handwriting"``, ``"affine"`` or ``"none"``).
    """
    parsed = parse_data_spec(spec)
    if isinstance(parsed, DigitsTask):
        splits = load_digits_task(
            parsed, image_size=image_size, in_channels=in_channels, preprocessing=preprocessing, augment=augment
        )
    else:
        splits = load_image_folder(parsed, image_size=image_size, in_channels=in_channels, preprocessing=preprocessing)
    if limit_train is not None:
        splits.train = _limit(splits.train, limit_train)
    return splits


def _limit(dataset: Dataset, n: int) -> Dataset:
    if n < 1:
        raise DataError(f"limit_train must be >= 1, got {n}")
    total = len(dataset)  # type: ignore[arg-type]
    if n >= total:
        return dataset
    keep = np.sort(np.random.default_rng(SPLIT_SEED).permutation(total)[:n])
    if isinstance(dataset, TensorImages):
        idx = torch.from_numpy(keep)
        return TensorImages(dataset.images[idx], dataset.targets[idx], dataset.channels)
    assert isinstance(dataset, ImageFolder)
    return ImageFolder([dataset.samples[i] for i in keep], dataset.transform, dataset.color_mode)


def stratified_split(
    labels: Sequence[int] | np.ndarray, fractions: Sequence[float] = SPLIT_FRACTIONS, seed: int = SPLIT_SEED
) -> list[np.ndarray]:
    """Indices of each split, every class divided in ``fractions`` (each split gets >= 1 per class).

    Classes are handled one by one with their own seeded shuffle, so adding a class does
    not move the images of the others.
    """
    labels = np.asarray(labels)
    parts: list[list[int]] = [[] for _ in fractions]
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if len(members) < len(fractions):
            raise DataError(
                f"class {cls} has {len(members)} image(s); a {len(fractions)}-way split needs at least "
                f"{len(fractions)} per class"
            )
        rng = np.random.default_rng([seed, int(cls)])
        members = rng.permutation(members)
        counts = [max(1, round(f * len(members))) for f in fractions[1:]]
        counts.insert(0, len(members) - sum(counts))
        if counts[0] < 1:
            raise DataError(f"class {cls} has too few images ({len(members)}) for a train/validation/test split")
        start = 0
        for part, count in zip(parts, counts, strict=True):
            part.extend(members[start : start + count].tolist())
            start += count
    return [np.sort(np.array(p, dtype=np.int64)) for p in parts]


# --------------------------------------------------------------------------------------- digits


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int64)


def _per_class(indices: np.ndarray, labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    keep = []
    for cls in np.unique(labels[indices]):
        members = indices[labels[indices] == cls]
        rng = np.random.default_rng([seed, int(cls), k])
        keep.extend(rng.permutation(members)[:k].tolist())
    return np.sort(np.array(keep, dtype=np.int64))


def load_digits_task(
    task: DigitsTask = DigitsTask(),
    *,
    image_size: int,
    in_channels: int = 3,
    preprocessing: Preprocessing | None = None,
    augment: str = "none",
) -> DataSplits:
    """The digits (or a :class:`DigitsTask` of them) resized to ``image_size`` in one go."""
    if in_channels not in (1, 3):
        raise DataError(f"digits can feed 1- or 3-channel networks, not {in_channels}")
    images, targets = _digits_arrays()
    splits = stratified_split(targets, SPLIT_FRACTIONS, SPLIT_SEED)
    wanted = np.isin(targets, task.classes)
    splits = [s[wanted[s]] for s in splits]
    if task.per_class is not None:
        short = {c: n for c, n in Counter(targets[splits[0]].tolist()).items() if n < task.per_class}
        if short:
            log.warning("digits: only %s training images for classes %s", min(short.values()), sorted(short))
        splits[0] = _per_class(splits[0], targets, task.per_class, SPLIT_SEED)
        splits[1] = _per_class(splits[1], targets, task.per_class, SPLIT_SEED + 1)

    size = int(image_size)
    pixels = torch.from_numpy(images)[:, None]
    mode = "bilinear" if size >= pixels.shape[-1] else "area"
    resized = F.interpolate(
        pixels, size=(size, size), mode=mode, **({"align_corners": False} if mode == "bilinear" else {})
    )
    if preprocessing is None:
        train_pixels = resized[torch.from_numpy(splits[0])]
        mean, std = float(train_pixels.mean()), float(train_pixels.std())
        preprocessing = Preprocessing(size, "L", (mean,), (std,), resize="stretch", crop_pct=1.0)
        preprocessing = preprocessing.with_channels(in_channels)
    elif preprocessing.image_size != size:
        raise DataError(f"preprocessing is for {preprocessing.image_size}px images, asked for {size}px")
    preprocessing = dataclasses.replace(preprocessing.with_channels(in_channels), digits=DIGITS.model_dump())
    # Grey digits: every channel has the same statistics (replicated grey), so one is enough.
    mean, std = preprocessing.mean[0], preprocessing.std[0]
    normalised = (resized - mean) / std

    remap = torch.full((10,), -1, dtype=torch.long)
    remap[list(task.classes)] = torch.arange(len(task.classes))
    labels_all = remap[torch.from_numpy(targets)]

    def subset(idx: np.ndarray) -> TensorImages:
        t = torch.from_numpy(idx)
        return TensorImages(normalised[t].contiguous(), labels_all[t], in_channels)

    return DataSplits(
        train=subset(splits[0]),
        val=subset(splits[1]),
        test=subset(splits[2]),
        labels=[str(c) for c in task.classes],
        preprocessing=preprocessing,
        name=task.spec,
        augment=_digits_augment(augment, mean, std),
    )


def _digits_augment(name: str, mean: float, std: float) -> BatchAugment | None:
    if name == "affine":
        return _affine((0.0 - mean) / std)
    if name == "handwriting":
        return functools.partial(handwriting_augment, mean=mean, std=std)
    return None


def _affine(fill: float) -> BatchAugment:
    def augment(x: Tensor, generator: torch.Generator, shard: tuple[int, int] = (0, 1)) -> Tensor:
        return random_affine(x, fill=fill, generator=generator, shard=shard)

    return augment


# -------------------------------------------------------------------------------- image folders


@dataclass
class FolderScan:
    """What :func:`scan_image_folder` found: class names, readable samples, skipped files."""

    root: Path
    classes: list[str]
    samples: list[tuple[Path, int]]
    skipped: list[tuple[Path, str]]


def scan_image_folder(root: str | os.PathLike, classes: Sequence[str] | None = None) -> FolderScan:
    """Find ``root/<class>/**/<image>`` files; empty or unreadable ones are reported and skipped.

    ``classes`` fixes the class list (a validation tree must have the training tree's classes).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a directory; give a class-per-folder image tree or 'digits'")
    found = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if classes is None:
        classes = found
        if not classes:
            raise DataError(
                f"{root} has no class folders; expected {root}/<class name>/<image files> (one folder per class)"
            )
        if len(classes) < 2:
            raise DataError(
                f"{root} has a single class folder ({classes[0]!r}); classification needs at least 2 classes"
            )
    else:
        extra = sorted(set(found) - set(classes))
        if extra:
            raise DataError(f"{root} has classes not in the training tree: {', '.join(extra)}")
    samples: list[tuple[Path, int]] = []
    skipped: list[tuple[Path, str]] = []
    empty_classes: list[str] = []
    for label, name in enumerate(classes):
        count = 0
        class_dir = root / name
        files = sorted(p for p in class_dir.rglob("*") if p.is_file()) if class_dir.is_dir() else []
        for path in files:
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                if not path.name.startswith("."):
                    log.debug("ignoring %s: not an image file name", path)
                continue
            reason = _unreadable(path)
            if reason:
                skipped.append((path, reason))
                continue
            samples.append((path, label))
            count += 1
        if count == 0:
            empty_classes.append(name)
    if skipped:
        shown = "; ".join(f"{p} ({why})" for p, why in skipped[:10])
        more = f"; and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        log.warning("skipped %d unreadable or empty file(s) under %s: %s%s", len(skipped), root, shown, more)
    if empty_classes:
        raise DataError(
            f"class folder(s) with no readable images under {root}: {', '.join(empty_classes)}; "
            "add images or remove the folder"
        )
    return FolderScan(root, list(classes), samples, skipped)


def _unreadable(path: Path) -> str | None:
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with Image.open(path) as img:
            img.verify()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        return f"unreadable: {err}"
    return None


def load_image_folder(
    root: str | os.PathLike,
    *,
    image_size: int,
    in_channels: int = 3,
    preprocessing: Preprocessing | None = None,
    crop_pct: float = 0.875,
) -> DataSplits:
    """A class-per-folder tree, or a tree with ``train/`` and ``val/`` (and ``test/``) folders."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"data path {root} does not exist; give 'digits' or a class-per-folder image tree")
    if in_channels not in (1, 3):
        raise DataError(f"image folders can feed 1- or 3-channel networks, not {in_channels}")
    mode = "L" if in_channels == 1 else "RGB"
    folder = _folder_splits(root)
    classes, train_samples, val_samples, test_samples = folder.classes, folder.train, folder.val, folder.test
    if preprocessing is None:
        mean, std = _folder_stats(train_samples, image_size, mode, crop_pct)
        preprocessing = Preprocessing(image_size, mode, mean, std, resize="center_crop", crop_pct=crop_pct)
    else:
        preprocessing = preprocessing.with_channels(in_channels)
        if preprocessing.image_size != image_size:
            raise DataError(f"preprocessing is for {preprocessing.image_size}px images, asked for {image_size}px")
    p = preprocessing
    evaluate = eval_transform(p.image_size, p.mean, p.std, crop_pct=p.crop_pct, interpolation=p.interpolation)
    augment = train_transform(p.image_size, p.mean, p.std, interpolation=p.interpolation)
    return DataSplits(
        train=ImageFolder(train_samples, augment, mode),
        val=ImageFolder(val_samples, evaluate, mode),
        test=ImageFolder(test_samples, evaluate, mode),
        labels=list(classes),
        preprocessing=preprocessing,
        name=str(root),
        test_split=folder.test_split,
    )


@dataclass
class _FolderSplits:
    classes: list[str]
    train: list[tuple[Path, int]]
    val: list[tuple[Path, int]]
    test: list[tuple[Path, int]]
    test_split: str = "test"


def _folder_splits(root: Path) -> _FolderSplits:
    """The samples of each split of a class-per-folder tree: its own train/val/test folders, or 70/10/20."""
    val_dir = next((root / d for d in _VAL_DIRS if (root / d).is_dir()), None)
    if (root / "train").is_dir() and val_dir is not None:
        train_scan = scan_image_folder(root / "train")
        classes = train_scan.classes
        val_samples = scan_image_folder(val_dir, classes).samples
        if (root / "test").is_dir():
            return _FolderSplits(
                classes, train_scan.samples, val_samples, scan_image_folder(root / "test", classes).samples
            )
        log.info("%s has no test/ folder: the validation images also give the test metrics", root)
        return _FolderSplits(classes, train_scan.samples, val_samples, val_samples, "val")
    scan = scan_image_folder(root)
    train, val, test = ([scan.samples[i] for i in part] for part in stratified_split([lb for _, lb in scan.samples]))
    return _FolderSplits(scan.classes, train, val, test)


def _folder_stats(
    samples: Sequence[tuple[Path, int]], size: int, mode: str, crop_pct: float
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of (up to 256 of) the training images, as evaluated."""
    channels = 1 if mode == "L" else 3
    plain = eval_transform(size, (0.0,) * channels, (1.0,) * channels, crop_pct=crop_pct)
    picks = np.random.default_rng(SPLIT_SEED).permutation(len(samples))[:_STATS_SAMPLE]
    dataset = ImageFolder([samples[i] for i in picks], plain, mode)
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    count = 0
    for i in range(len(dataset)):
        x = dataset[i][0].double()
        total += x.sum(dim=(1, 2))
        squares += (x * x).sum(dim=(1, 2))
        count += x.shape[1] * x.shape[2]
    mean = total / count
    std = (squares / count - mean * mean).clamp_min(1e-12).sqrt().clamp_min(1e-3)
    return tuple(mean.tolist()), tuple(std.tolist())


# ----------------------------------------------------------------------------- held-out images


@dataclass(frozen=True)
class HeldOutImage:
    """A real image of a task's test split, never one it trains on, as it is stored (not preprocessed).

    ``label`` and ``index`` are its class (``None`` for an unlabelled image from elsewhere).
    """

    image: Image.Image
    label: str | None
    index: int | None


def held_out_images(spec: str | os.PathLike, *, per_class: int = 2, max_images: int = 40) -> list[HeldOutImage]:
    """The first ``per_class`` test-split images of each class, in class order, at most ``max_images``.

    The splits are :func:`load_data`'s (the same seed and fractions), so none of these images is a
    training or validation image (a folder tree without ``test/`` evaluates on ``val/``: those).
    """
    parsed = parse_data_spec(spec)
    if isinstance(parsed, DigitsTask):
        found = _held_out_digits(parsed, per_class)
    else:
        found = _held_out_folder(parsed, per_class, max_images)
    return found[:max_images]


def _held_out_digits(task: DigitsTask, per_class: int) -> list[HeldOutImage]:
    images, targets = _digits_arrays()
    test = stratified_split(targets, SPLIT_FRACTIONS, SPLIT_SEED)[2]
    out = []
    for index, digit in enumerate(task.classes):
        for i in test[targets[test] == digit][:per_class]:
            # scikit-learn's 0..16 grey levels as 8-bit pixels, at the 8x8 they were scanned at.
            pixels = np.rint(images[i] * 255).astype(np.uint8)
            out.append(HeldOutImage(Image.fromarray(pixels), str(digit), index))
    return out


def _held_out_folder(root: Path, per_class: int, max_images: int) -> list[HeldOutImage]:
    split = _folder_splits(root)
    out: list[HeldOutImage] = []
    for index, name in enumerate(split.classes):
        for path in [p for p, label in split.test if label == index][:per_class]:
            if len(out) >= max_images:
                return out
            try:
                with Image.open(path) as img:
                    # Upright, as the service reads it (the EXIF orientation is not kept by every format).
                    image = ImageOps.exif_transpose(img)
                    image.load()
            except (OSError, ValueError, SyntaxError) as err:
                log.warning("skipping unreadable held-out image %s: %s", path, err)
                continue
            out.append(HeldOutImage(image if image.mode in ("L", "RGB") else image.convert("RGB"), name, index))
    return out


# -------------------------------------------------------------------------------------- loaders


class _TensorBatches:
    """Batches of a :class:`TensorImages` by index, without per-sample collation."""

    def __init__(self, dataset: TensorImages, batches: Sequence[Sequence[int]] | BatchSampler) -> None:
        self.dataset, self.batches = dataset, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for idx in self.batches:
            yield self.dataset.batch(torch.as_tensor(list(idx), dtype=torch.long))


def train_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
    workers: int = 0,
) -> _TensorBatches | DataLoader:
    """This process's share of one shuffled epoch, in batches of ``batch_size // world_size``.

    All processes shuffle with the same seed and take every ``world_size``-th image of it, so
    batch k of the processes together is batch k of a single-process run: the same updates.
    """
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=False)
    sampler.set_epoch(epoch)
    batches = BatchSampler(sampler, batch_size // world_size, drop_last=True)
    if isinstance(dataset, TensorImages):
        return _TensorBatches(dataset, batches)
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch * 101 + rank)
    return DataLoader(dataset, batch_sampler=batches, num_workers=workers, generator=generator)


def eval_loader(
    dataset: Dataset, batch_size: int, *, rank: int = 0, world_size: int = 1, workers: int = 0
) -> _TensorBatches | DataLoader:
    """Every ``world_size``-th image from ``rank``, no padding: summed counts are exact."""
    indices = list(range(rank, len(dataset), world_size))  # type: ignore[arg-type]
    batches = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    if isinstance(dataset, TensorImages):
        return _TensorBatches(dataset, batches)
    return DataLoader(dataset, batch_sampler=batches, num_workers=workers)


def effective_batch_size(requested: int, n_train: int, world_size: int) -> int:
    """``requested``, or the whole training set when it is smaller, as a multiple of ``world_size``."""
    batch = min(requested, n_train)
    if requested % world_size and batch == requested:
        raise DataError(
            f"batch size {requested} does not split over {world_size} processes; "
            f"use --batch-size {math.ceil(requested / world_size) * world_size}"
        )
    batch -= batch % world_size
    if batch < world_size:
        raise DataError(f"{n_train} training image(s) cannot feed {world_size} processes")
    return batch
