"""Reference computations for the service tests: the training pipeline's preprocessing
(``training.transforms``, torch allowed here) and direct ONNX Runtime inference."""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image

from repository import ModelCard, Repository
from training.digit_ink import digits_input
from training.transforms import CenterCrop, Compose, Normalize, Resize, ToTensor


def reference_tensor(card: ModelCard, image: bytes) -> np.ndarray:
    """(C, H, W) as evaluation in training prepares ``image`` (no EXIF, no draft decoding).

    A digit model's image is made into the data set's digit by training's torch code
    (``training.digit_ink``), the service's being numpy.
    """
    spec = card.input
    if spec.digits is not None:
        with Image.open(io.BytesIO(image)) as img:
            grey = torch.from_numpy(np.asarray(img.convert("L"), dtype=np.float32) / 255.0)
        pixels = digits_input(grey, spec.crop, spec.digits)
        assert pixels is not None, "the image has no ink"
        mean, std = np.asarray(spec.mean, np.float32)[:, None, None], np.asarray(spec.std, np.float32)[:, None, None]
        return (np.broadcast_to(pixels.numpy(), tuple(spec.shape)) - mean) / std
    pipeline = Compose(
        [Resize(spec.resize, spec.interpolation), CenterCrop(spec.crop), ToTensor(), Normalize(spec.mean, spec.std)]
    )
    with Image.open(io.BytesIO(image)) as img:
        return pipeline(img.convert(spec.color_mode)).numpy()


@functools.cache
def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def direct(
    repository: Path, name: str, batch: np.ndarray, version: int | None = None, precision: str = "fp32"
) -> dict[str, np.ndarray]:
    """Outputs of the model's ONNX file run directly with ONNX Runtime, one request."""
    repo = Repository(repository)
    version = version or repo.load_card(name).latest_version
    session = _session(repo.variant_path(name, version, precision))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"input": batch.astype(np.float32)}), strict=True))


def assert_a_best_class(index: int, probabilities: np.ndarray, atol: float = 1e-6) -> None:
    """``index`` has the highest of ``probabilities`` (one row), or one tied with it to within ``atol``.

    The same graph run at another batch size, thread count or on another CPU rounds differently:
    where a quick model's two best classes are that close, either is a right top-1.
    """
    assert probabilities[index] >= probabilities.max() - atol, (index, probabilities)


def encode(img: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


@functools.cache
def sample_photos() -> tuple[bytes, ...]:
    """scikit-learn's two sample photos (china, flower; 640x427 RGB) as JPEG files."""
    from sklearn.datasets import load_sample_images

    return tuple(encode(Image.fromarray(a), "JPEG", quality=90) for a in load_sample_images().images)


def pattern(size: tuple[int, int] = (48, 40), mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A deterministic noisy image: every pixel matters, so a wrong crop or flip shows."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    data = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(data[:, :, 0] if channels == 1 else data, mode)
