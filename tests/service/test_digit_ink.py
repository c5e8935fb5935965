"""A person's digit as the data set's digit (the card's ``input.digits``): the service against training, over HTTP."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from export.handwriting import handwritten_digits
from repository import DigitNormalization, InputSpec, ModelCard
from service.core import digit_ink as served
from service.core.errors import InvalidInput
from service.core.preprocess import ImagePipeline
from training import digit_ink as trained

from .helpers import direct, reference_tensor

SPEC = DigitNormalization()


def _grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.uint8)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def drawn() -> list:
    return handwritten_digits(per_digit=3, seed=7)


def test_the_service_and_training_make_the_same_digit(drawn) -> None:
    """numpy (served) and torch (trained, batched) agree exactly, thickened strokes included."""
    inks = [served.digit_ink(_grey(d.image), SPEC) for d in drawn]
    want = np.stack([served.ink_to_digits(ink, SPEC) for ink in inks])
    got = trained.ink_to_digits(torch.from_numpy(np.stack(inks))[:, None].double(), SPEC)[:, 0].numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)
    for d, ink in zip(drawn[:6], inks[:6], strict=False):
        grey = torch.from_numpy(_grey(d.image).astype(np.float32) / 255.0)
        np.testing.assert_allclose(trained.digit_ink(grey, SPEC).numpy(), ink, atol=1e-5)


def test_both_polarities_give_the_data_sets_picture(drawn) -> None:
    """Ink is light on dark whatever the image; the box fills the height; values are block counts."""
    for d in drawn:
        digit = served.ink_to_digits(served.digit_ink(_grey(d.image), SPEC), SPEC)
        assert digit.shape == (8, 8) and digit.min() >= 0 and digit.max() <= 1
        assert np.allclose(digit * 16, np.round(digit * 16), atol=1e-4)  # counts of a 4x4 block, as NIST's
        rows, cols = np.flatnonzero(digit.max(axis=1)), np.flatnonzero(digit.max(axis=0))
        assert (rows[0], rows[-1]) == (0, 7) or (cols[0], cols[-1]) == (0, 7)  # the longer side fills the frame
        assert abs(cols[0] - (7 - cols[-1])) <= 1 and abs(rows[0] - (7 - rows[-1])) <= 1  # centred
    light = [d for d in drawn if d.polarity == "light-on-dark"]
    dark = [d for d in drawn if d.polarity == "dark-on-light"]
    assert light and dark
    mean_ink = [np.mean([served.digit_ink(_grey(d.image), SPEC).mean() for d in group]) for group in (light, dark)]
    assert max(mean_ink) < 0.2  # the paper is not ink in either polarity


def test_a_data_set_digit_comes_back_as_itself() -> None:
    """A digit of the data set, drawn large, normalises to (nearly) its own 8x8 values."""
    bunch = load_digits()
    errors = []
    for image in bunch.images[:60] / 16.0:
        big = np.kron(np.rint(image * 255).astype(np.uint8), np.ones((35, 35), np.uint8))  # 280 x 280, a block each
        digit = served.ink_to_digits(served.digit_ink(big, SPEC), SPEC)
        errors.append(np.abs(digit - (image > 0.5)).mean())
    assert np.median(errors) < 0.15  # binarised and counted again: about an eighth of a block off


@pytest.mark.parametrize("shade", [0, 128, 255])
def test_an_image_without_ink_is_refused(shade: int) -> None:
    pipeline = ImagePipeline(_digit_spec(), max_pixels=10**7)
    with pytest.raises(InvalidInput, match="no ink"):
        pipeline.one(_png(Image.new("L", (280, 280), shade)))


def test_grain_alone_is_not_ink() -> None:
    noise = np.random.default_rng(0).normal(200, 2, (200, 200)).clip(0, 255).astype(np.uint8)
    with pytest.raises(InvalidInput, match="no ink"):
        ImagePipeline(_digit_spec(), max_pixels=10**7).one(_png(Image.fromarray(noise, "L")))


def test_without_digits_the_plain_resize_and_crop_is_kept() -> None:
    spec = _digit_spec().model_copy(update={"digits": None})
    tensor = ImagePipeline(spec, max_pixels=10**7).one(_png(Image.new("L", (64, 64), 255)))
    assert np.allclose(tensor, (1.0 - 0.3) / 0.3)  # a blank white image is served as it is


def _digit_spec() -> InputSpec:
    return InputSpec(
        shape=[1, 32, 32], color_mode="L", resize=32, crop=32, mean=[0.3], std=[0.3], digits=DigitNormalization()
    )


def test_predict_normalises_a_drawn_digit_as_the_card_says(
    client: httpx.Client, repository, cards: dict[str, ModelCard], grey_model: str, drawn
) -> None:
    card = cards[grey_model]
    assert card.input.digits == SPEC  # a digits build declares its normalisation
    for d in (drawn[0], drawn[-1]):  # one of each polarity
        png = _png(d.image)
        r = client.post("/predict", params={"model": grey_model, "probabilities": True}, files={"file": ("d.png", png)})
        assert r.status_code == 200, r.text
        want = direct(repository, grey_model, reference_tensor(card, png)[None])["probabilities"]
        np.testing.assert_allclose(r.json()["predictions"][0]["probabilities"], want[0], rtol=1e-4, atol=1e-6)


def test_predict_refuses_an_empty_canvas_with_a_clear_422(client: httpx.Client, grey_model: str) -> None:
    r = client.post(
        "/predict", params={"model": grey_model}, files={"file": ("blank.png", _png(Image.new("L", (280, 280))))}
    )
    assert r.status_code == 422, r.text
    assert "no ink" in r.json()["error"]
    assert client.get("/readyz").status_code == 200  # nothing else is lost


def test_models_describe_the_normalisation(client: httpx.Client, grey_model: str) -> None:
    listed = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert listed[grey_model]["input"]["digits"]["resolution"] == 8
