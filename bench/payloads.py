"""Request bodies with real image content: scikit-learn's two sample photos (no download).

* ``jpeg224``/``png224``: the China photo, centre-cropped and resized to 224 x 224;
* ``jpeg12mp``: the flower photo upscaled to 4000 x 3000 (12 megapixels), like a phone's photo;
* ``tensor``: the 224 x 224 image prepared as a model's card says (the service's steps in numpy),
  sent as JSON nested lists - the same tensor the bare ``session.run`` is timed on.
"""

from __future__ import annotations

import functools
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .loadgen import HttpRequest

__all__ = ["IMAGE_KINDS", "Payload", "photo", "predict_request", "prepare", "tensor_payload", "v2_binary_payload"]

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


def image_payload(model: str, kind: str) -> Payload:
    fmt, size = IMAGE_KINDS[kind]
    body = encoded(kind)
    shape = "224 x 224" if size == 224 else "4000 x 3000"
    return Payload(kind, predict_request(model, body, _MEDIA[fmt]), f"{fmt} {shape}, {len(body) / 1024:.0f} KiB")
