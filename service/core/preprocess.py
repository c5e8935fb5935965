"""Image bytes to the model's input tensor, as the card's :class:`InputSpec` says.

The same steps as evaluation in training (``training.transforms.eval_transform``): decode, honour
the EXIF orientation, convert to the card's colour mode, resize the shorter side to ``resize``,
centre-crop ``crop``, scale to [0, 1], ``(x - mean) / std``, CHW float32. Two additions for
serving: the pixel count is checked from the header before anything is decoded (a PNG of a few
kilobytes can claim billions of pixels), and JPEGs are decoded at a reduced scale when the
image is at least four times the size the model needs (Pillow's ``draft``: big photos decode fast).

A digit model's card adds ``input.digits``: the image then becomes the digits data set's picture of a
digit (:mod:`service.core.digit_ink`) instead of being resized and cropped.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from repository import InputSpec

from .digit_ink import bilinear_weights, digit_ink, ink_to_digits
from .errors import ImageTooLarge, InvalidInput, UnsupportedMediaType

__all__ = ["ImagePipeline"]

_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}
_READABLE = "JPEG, PNG, GIF, BMP, TIFF, WebP"


class ImagePipeline:
    """Decode and prepare images for one model; built once per served model."""

    def __init__(self, spec: InputSpec, max_pixels: int) -> None:
        self.spec = spec
        self.max_pixels = max_pixels
        self.shape = tuple(spec.shape)
        self._resample = _RESAMPLE[spec.interpolation]
        channels = spec.shape[0]
        self._mean = np.asarray(spec.mean, dtype=np.float32).reshape(channels, 1, 1)
        self._std = np.asarray(spec.std, dtype=np.float32).reshape(channels, 1, 1)

    def __call__(self, images: Sequence[bytes]) -> np.ndarray:
        """A (N, C, H, W) float32 batch; raises a 413/415/422 error naming the bad image."""
        out = np.empty((len(images), *self.shape), dtype=np.float32)
        for i, data in enumerate(images):
            try:
                out[i] = self.one(data)
            except (ImageTooLarge, UnsupportedMediaType, InvalidInput) as exc:
                if len(images) > 1:
                    exc.message = f"image {i}: {exc.message}"
                raise
        return out

    def one(self, data: bytes) -> np.ndarray:
        img = self._open(data)
        try:
            if self.spec.digits is not None:
                return self._digit(img)
            img = self._prepare(img)
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge(str(exc)) from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise InvalidInput(f"the image cannot be decoded (truncated or corrupt?): {exc}") from None
        return self._to_tensor(img)

    def _digit(self, img: Image.Image) -> np.ndarray:
        """The card's digit normalisation (``input.digits``), resized to the input as training did."""
        spec = self.spec.digits
        assert spec is not None
        if img.format == "JPEG":
            img.draft("L", (8 * spec.frame, 8 * spec.frame))  # a photo of a note: its ink as a full decode finds it
        grey = np.asarray(ImageOps.exif_transpose(img).convert("L"), dtype=np.uint8)
        values = ink_to_digits(digit_ink(grey, spec), spec)
        rows, cols = bilinear_weights(spec.resolution, self.shape[1]), bilinear_weights(spec.resolution, self.shape[2])
        pixels = rows @ values @ cols.T
        return (np.broadcast_to(pixels, self.shape) - self._mean) / self._std

    def _open(self, data: bytes) -> Image.Image:
        if not data:
            raise InvalidInput("empty image")
        try:
            img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge(str(exc)) from None
        except UnidentifiedImageError:
            raise UnsupportedMediaType(f"not an image format the server reads ({_READABLE})") from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise InvalidInput(f"the image header cannot be read: {exc}") from None
        width, height = img.size
        if width * height > self.max_pixels:
            raise ImageTooLarge(
                f"the image is {width}x{height} = {width * height:,} pixels; the limit is {self.max_pixels:,}",
                details={"width": width, "height": height, "max_pixels": self.max_pixels},
            )
        if width < 1 or height < 1:
            raise InvalidInput(f"the image is {width}x{height}")
        return img

    def _prepare(self, img: Image.Image) -> Image.Image:
        spec = self.spec
        if img.format == "JPEG":
            # Decode at 1/2, 1/4 or 1/8 scale while both sides stay >= 2 x resize (square: any
            # orientation). The 2x margin leaves the final resize its antialiasing: the result
            # stays within about 1/255 of a full decode, at a fraction of the time for a photo.
            img.draft(spec.color_mode, (2 * spec.resize, 2 * spec.resize))
        img = ImageOps.exif_transpose(img)
        if img.mode != spec.color_mode:
            img = img.convert(spec.color_mode)
        w, h = img.size
        # Shorter side to `resize` (training.transforms.Resize), then the centre crop (CenterCrop).
        if w <= h:
            size = (spec.resize, max(1, round(h * spec.resize / w)))
        else:
            size = (max(1, round(w * spec.resize / h)), spec.resize)
        if size != (w, h):
            img = img.resize(size, self._resample)
        w, h = img.size
        left, top = round((w - spec.crop) / 2), round((h - spec.crop) / 2)
        return img.crop((left, top, left + spec.crop, top + spec.crop))

    def to_image(self, tensor: np.ndarray) -> Image.Image:
        """A (C, H, W) tensor of :meth:`one` as the picture the model sees: ``x * std + mean``, clipped to [0, 1]."""
        pixels = np.clip(tensor * self._std + self._mean, 0.0, 1.0)
        hwc = np.rint(pixels * 255.0).astype(np.uint8).transpose(1, 2, 0)
        return Image.fromarray(hwc[:, :, 0] if hwc.shape[2] == 1 else hwc)

    def _to_tensor(self, img: Image.Image) -> np.ndarray:
        array = np.asarray(img, dtype=np.float32) / 255.0
        if array.ndim == 2:
            array = array[:, :, None]
        chw = array.transpose(2, 0, 1)
        if chw.shape != self.shape:
            raise InvalidInput(f"the prepared image has shape {list(chw.shape)}, the model takes {list(self.shape)}")
        return (chw - self._mean) / self._std
