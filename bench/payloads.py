"""Request bodies with real image content: scikit-learn's two sample photos (no download).

* ``jpeg224``/``png224``: the China photo, centre-cropped and resized to 224 x 224;
* ``jpeg12mp``: the flower photo upscaled to 4000 x 3000 (12 megapixels), like a phone's photo;
* ``tensor``: the 224 x 224 image prepared as a model's card says (the service's steps in numpy),
  sent as JSON nested lists - the same tensor the bare ``session.run`` is timed on.

Under load every answer is checked (:func:`answer_pool`, :func:`answer_check`): the requests go
through inputs of different top classes, so an answer meant for another request shows.
"""

from __future__ import annotations

import functools
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .loadgen import HttpRequest

__all__ = [
    "IMAGE_KINDS",
    "PAYLOADS",
    "AnswerPool",
    "Payload",
    "answer_check",
    "answer_pool",
    "photo",
    "predict_request",
    "prepare",
    "tensor_payload",
    "v2_binary_payload",
]

IMAGE_KINDS = {"png224": ("PNG", 224), "jpeg224": ("JPEG", 224), "jpeg12mp": ("JPEG", 4000)}
_MEDIA = {"PNG": "image/png", "JPEG": "image/jpeg"}


@dataclass(frozen=True)
class Payload:
    kind: str
    request: HttpRequest
    description: str

    @property
    def bytes(self) -> int:
        return len(self.request.body)


@functools.cache
def photo(kind: str) -> Image.Image:
    """``"224"``: a 224 x 224 crop of the China photo; ``"12mp"``: the flower photo at 4000 x 3000."""
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images
    if kind == "224":
        h, w, _ = china.shape
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        return Image.fromarray(china[top : top + side, left : left + side]).resize((224, 224), Image.Resampling.BICUBIC)
    if kind == "12mp":
        return Image.fromarray(flower).resize((4000, 3000), Image.Resampling.BICUBIC)
    raise ValueError(f"unknown photo {kind!r}: '224' or '12mp'")


@functools.cache
def encoded(kind: str) -> bytes:
    fmt, size = IMAGE_KINDS[kind]
    image = photo("224" if size == 224 else "12mp")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def prepare(image: Image.Image, spec: Any) -> np.ndarray:
    """(1, C, H, W) float32 as the card's ``InputSpec`` says (colour mode, resize, centre crop, normalise)."""
    img = image.convert(spec.color_mode)
    w, h = img.size
    size = (
        (spec.resize, max(1, round(h * spec.resize / w)))
        if w <= h
        else (max(1, round(w * spec.resize / h)), spec.resize)
    )
    img = img.resize(size, Image.Resampling.BILINEAR)
    w, h = img.size
    left, top = round((w - spec.crop) / 2), round((h - spec.crop) / 2)
    img = img.crop((left, top, left + spec.crop, top + spec.crop))
    array = np.asarray(img, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    mean = np.asarray(spec.mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(spec.std, dtype=np.float32).reshape(-1, 1, 1)
    return ((array.transpose(2, 0, 1) - mean) / std)[None].astype(np.float32)


def predict_request(model: str, body: bytes, media: str) -> HttpRequest:
    return HttpRequest("POST", f"/models/{model}/predict?top_k=1", body, {"Content-Type": media})


def tensor_payload(model: str, tensor: np.ndarray) -> Payload:
    """``{"tensor": ...}`` with 4 decimals per value: what a client would reasonably send."""
    rows = np.round(tensor.astype(np.float64), 4).tolist()
    request = HttpRequest.json(f"/models/{model}/predict?top_k=1", {"tensor": rows})
    return Payload("tensor", request, f"JSON tensor {list(tensor.shape)}")


def v2_binary_payload(model: str, tensor: np.ndarray) -> Payload:
    """``POST /v2/models/{model}/infer`` with the tensor as raw bytes (the binary tensor data extension)
    and the top class back (``classification: 1``): how a Triton client sends numpy arrays."""
    raw = np.ascontiguousarray(tensor, dtype=np.float32).tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(tensor.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "probabilities", "parameters": {"classification": 1}}],
        },
        separators=(",", ":"),
    ).encode()
    request = HttpRequest(
        "POST",
        f"/v2/models/{model}/infer",
        header + raw,
        {
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(len(header)),
        },
    )
    return Payload("v2-binary", request, f"v2 binary tensor {list(tensor.shape)}")


PAYLOADS = {"json": tensor_payload, "v2-binary": v2_binary_payload}  # the payloads of the loads


def image_payload(model: str, kind: str) -> Payload:
    fmt, size = IMAGE_KINDS[kind]
    body = encoded(kind)
    shape = "224 x 224" if size == 224 else "4000 x 3000"
    return Payload(kind, predict_request(model, body, _MEDIA[fmt]), f"{fmt} {shape}, {len(body) / 1024:.0f} KiB")


@dataclass(frozen=True)
class AnswerPool:
    """Inputs (each (1, C, H, W)) of different top classes, each clear of its runner-up, and those classes."""

    inputs: list[np.ndarray]
    classes: list[int]


def answer_pool(
    base: np.ndarray, probabilities: Callable[[np.ndarray], np.ndarray], size: int, margin: float = 1e-3
) -> AnswerPool:
    """Up to ``size`` variations of ``base`` whose top classes (by ``probabilities`` of a batch) all differ.

    A variation counts only if its top class leads the next by ``margin``: the server's batches
    (other sizes, other kernels) cannot change its answer. A model that gives every input the
    same class yields a pool of one: answers are then checked, but a swap cannot show.
    """
    rng = np.random.default_rng(0)
    scales = np.repeat([0.0, 0.5, 1.0, 2.0, 4.0], 16)
    noise = scales[:, None, None, None] * rng.standard_normal((len(scales), *base.shape[1:]))
    # 4 decimals, as tensor_payload sends them: the JSON tensor is then exactly the binary one.
    candidates = np.round(base + noise, 4).astype(np.float32)
    scores = probabilities(candidates)
    order = np.argsort(-scores, axis=1)
    rows = np.arange(len(scores))
    leads = scores[rows, order[:, 0]] - scores[rows, order[:, 1]]
    best: dict[int, int] = {}
    for i in np.argsort(-leads):
        top = int(order[i, 0])
        if leads[i] >= margin and top not in best:
            best[top] = int(i)
    picked = sorted(best.items())[:size] or [(int(order[0, 0]), 0)]
    return AnswerPool([candidates[i : i + 1] for _, i in picked], [c for c, _ in picked])


# The top class in an answer: v2's classification output ("score:index:label"), /predict's first top_k.
_TOP_CLASS = {"v2-binary": re.compile(rb'"data":\["[^:"]*:(\d+)'), "json": re.compile(rb'"index":(\d+)')}


def answer_check(payload: str, classes: list[int]) -> Callable[[int, bytes], bool]:
    """Whether the body answering request ``i`` of a pool names the top class of input ``i``."""
    pattern = _TOP_CLASS[payload]

    def check(index: int, body: bytes) -> bool:
        found = pattern.search(body)
        return found is not None and int(found[1]) == classes[index]

    return check
