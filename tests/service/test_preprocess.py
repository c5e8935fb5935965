"""Images become exactly the tensors training evaluated on; bad images are refused, not crashed on."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from repository import InputSpec
from service.core.errors import ImageTooLarge, InvalidInput, UnsupportedMediaType
from service.core.preprocess import ImagePipeline

from .helpers import encode, pattern, reference_tensor, sample_photos
from .repo_builder import SPECS

pytestmark = pytest.mark.xdist_group("service")

GREY = InputSpec(shape=[1, 32, 32], color_mode="L", resize=32, crop=32, mean=[0.5], std=[0.5])
RGB = InputSpec(
    shape=[3, 32, 32], color_mode="RGB", resize=36, crop=32, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]
)


class _Card:  # what reference_tensor reads
    def __init__(self, spec: InputSpec) -> None:
        self.input = spec


@pytest.mark.parametrize("spec", [GREY, RGB], ids=["grey", "rgb"])
@pytest.mark.parametrize("size", [(48, 40), (40, 48), (32, 32), (20, 60)])
def test_matches_the_training_evaluation_transform(spec: InputSpec, size: tuple[int, int]) -> None:
    png = encode(pattern(size))
    got = ImagePipeline(spec, 10**7)([png])
    assert got.shape == (1, *spec.shape) and got.dtype == np.float32
    np.testing.assert_allclose(got[0], reference_tensor(_Card(spec), png), rtol=0, atol=1e-6)


def test_batch_of_images_keeps_order() -> None:
    images = [encode(pattern(seed=i)) for i in range(3)]
    got = ImagePipeline(RGB, 10**7)(images)
    for i, png in enumerate(images):
        np.testing.assert_allclose(got[i], reference_tensor(_Card(RGB), png), atol=1e-6)


def test_exif_orientation_is_honoured() -> None:
    upright = pattern((40, 48))
    # Stored rotated, with EXIF orientation 6 ("rotate 90 CW to display") to undo it.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    tagged = encode(stored, "PNG", exif=exif)
    pipeline = ImagePipeline(RGB, 10**7)
    np.testing.assert_allclose(pipeline([tagged])[0], pipeline([encode(upright)])[0], atol=1e-6)


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("RGBA", "PNG"),
        ("P", "GIF"),
        ("L", "JPEG"),
        ("CMYK", "JPEG"),
        ("I;16", "PNG"),
        ("1", "BMP"),
        ("RGB", "TIFF"),
        ("RGB", "WEBP"),
    ],
)
def test_any_common_format_and_mode(mode: str, fmt: str) -> None:
    img = Image.new("I;16", (50, 30), 3000) if mode == "I;16" else pattern((50, 30)).convert(mode)
    data = encode(img, fmt)
    for spec in (GREY, RGB):
        out = ImagePipeline(spec, 10**7)([data])
        assert out.shape == (1, *spec.shape) and np.isfinite(out).all()


def test_big_jpeg_photos_decode_in_draft_mode_close_to_full_decoding() -> None:
    spec = InputSpec(shape=[3, 32, 32], color_mode="RGB", resize=32, crop=32, mean=[0.5] * 3, std=[0.5] * 3)
    for photo in sample_photos():
        with Image.open(io.BytesIO(photo)) as img:
            assert img.size == (640, 427)
        got = ImagePipeline(spec, 10**7)([photo])[0]
        full = reference_tensor(_Card(spec), photo)  # no draft: full-size decode, then resize
        assert np.abs(got - full).mean() < 0.02  # within ~1/255 of a full decode (std 0.5)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height but holds a few bytes: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def bomb_png(side: int = 7000) -> bytes:
    """A valid grey PNG of side x side black pixels (49 Mpx), about 50 kB on disk."""
    row = b"\0" * (side + 1)  # filter byte + pixels
    deflate = zlib.compressobj(9)
    body = b"".join(deflate.compress(row) for _ in range(side)) + deflate.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused_before_decoding() -> None:
    pipeline = ImagePipeline(GREY, max_pixels=40_000_000)
    bomb = bomb_png()
    assert len(bomb) < 100_000
    with pytest.raises(ImageTooLarge, match="7000x7000"):
        pipeline([bomb])
    with pytest.raises(ImageTooLarge):  # so large that Pillow itself refuses it at open
        pipeline([_png_header_only(100_000, 100_000)])


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", InvalidInput),
        (b"definitely not an image", UnsupportedMediaType),
        (b"%PDF-1.4 not an image either", UnsupportedMediaType),
        (encode(pattern((64, 64)), "PNG")[:200], InvalidInput),  # truncated
        (sample_photos()[0][:3000], InvalidInput),  # truncated JPEG
    ],
    ids=["empty", "text", "pdf", "truncated-png", "truncated-jpeg"],
)
def test_bad_images_raise_client_errors(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        ImagePipeline(RGB, 10**7)([data])


def test_error_names_the_bad_image_of_a_batch() -> None:
    with pytest.raises(UnsupportedMediaType, match="image 1"):
        ImagePipeline(RGB, 10**7)([encode(pattern()), b"junk"])


def test_specs_of_the_test_repository_are_covered() -> None:
    assert {s[2] for s in SPECS.values()} == {"L", "RGB"}
