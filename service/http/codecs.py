"""Reading ``/predict`` requests and writing their responses.

One endpoint takes four kinds of body, told apart by ``Content-Type``:

* ``multipart/form-data``: one or more image files (any field name), options as text fields;
* ``image/*``, ``application/octet-stream`` or none: the raw bytes of one image;
* ``application/json``: ``{"images": [base64, ...]}`` or ``{"tensor": [[[...]]]}``, options as fields.

Options (model, version, variant, top_k, probabilities) can also be query parameters; options
in the body win.
"""

from __future__ import annotations

import base64
import binascii
import io
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from ..core.dataplane import Inference, elapsed_ms, top_k
from ..core.errors import InvalidInput, UnsupportedMediaType
from ..core.model_manager import Servable
from .schemas import (
    ClassScore,
    Prediction,
    PredictOptions,
    PredictRequest,
    PredictResponse,
    PreprocessResponse,
    Timings,
)

__all__ = ["PredictPayload", "predict_response", "preprocess_response", "read_predict"]

_OPTION_FIELDS = set(PredictOptions.model_fields)
_FORM_TEXT_LIMIT = 4096


@dataclass(frozen=True)
class PredictPayload:
    options: PredictOptions
    images: list[bytes] | None = None
    tensor: list[Any] | None = None


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _options(query: PredictOptions, overrides: dict[str, Any], path_model: str | None) -> PredictOptions:
    if overrides:
        try:
            options = PredictOptions.model_validate({**query.model_dump(exclude_unset=True), **overrides})
        except ValidationError as exc:
            raise InvalidInput(f"invalid options: {_errors_text(exc)}", details=_errors(exc)) from None
    else:
        options = query
    if path_model is not None:
        if options.model not in (None, path_model):
            raise InvalidInput(f"the path names model {path_model!r}, the request {options.model!r}")
        options = options.model_copy(update={"model": path_model})
    return options


async def read_predict(
    request: Request, query: PredictOptions, *, path_model: str | None = None, max_images: int = 64
) -> PredictPayload:
    """Options and undecoded inputs of a /predict request (413/415/422 on a bad body)."""
    media = _media_type(request)
    if media == "multipart/form-data":
        return await _read_multipart(request, query, path_model, max_images)
    body = await request.body()
    if media == "application/json" or media.endswith("+json"):
        try:
            parsed = PredictRequest.model_validate_json(body)
        except ValidationError as exc:
            raise InvalidInput(f"invalid JSON body: {_errors_text(exc)}", details=_errors(exc)) from None
        overrides = parsed.model_dump(include=_OPTION_FIELDS, exclude_unset=True)
        options = _options(query, overrides, path_model)
        if parsed.images is not None:
            if len(parsed.images) > max_images:
                raise InvalidInput(f"{len(parsed.images)} images in one request; the limit is {max_images}")
            return PredictPayload(options, images=[_b64(i, s) for i, s in enumerate(parsed.images)])
        return PredictPayload(options, tensor=parsed.tensor)
    if media in ("", "application/octet-stream") or media.startswith("image/"):
        return PredictPayload(_options(query, {}, path_model), images=[body])
    raise UnsupportedMediaType(
        f"Content-Type {media!r} is not accepted: send multipart/form-data, image/*, application/octet-stream "
        "or application/json"
    )


async def _read_multipart(
    request: Request, query: PredictOptions, path_model: str | None, max_images: int
) -> PredictPayload:
    images: list[bytes] = []
    overrides: dict[str, Any] = {}
    try:
        async with request.form(
            max_files=max_images, max_fields=len(_OPTION_FIELDS), max_part_size=_FORM_TEXT_LIMIT
        ) as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    images.append(await value.read())
                else:
                    overrides[key] = value
    # Starlette's parser reports limits and syntax as an HTTPException behind its router, and as the
    # MultiPartException itself where no router ran (the fast path): both are the client's fault.
    except StarletteHTTPException as exc:
        raise InvalidInput(f"malformed multipart body: {exc.detail}") from None
    except MultiPartException as exc:
        raise InvalidInput(f"malformed multipart body: {exc.message}") from None
    if not images:
        raise InvalidInput("the multipart body holds no file: send the image(s) as file field(s)")
    return PredictPayload(_options(query, overrides, path_model), images=images)


def _b64(index: int, text: str) -> bytes:
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"images[{index}] is not valid base64") from None


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()[:20]]


def _errors_text(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5])


def predict_response(result: Inference, options: PredictOptions, started: float, decoded: float) -> PredictResponse:
    servable = result.servable
    probabilities = result.probabilities
    indices, values = top_k(probabilities, options.top_k)
    labels = servable.labels
    predictions = [
        Prediction(
            top_k=[ClassScore(label=labels[j], index=j, probability=p) for j, p in zip(row_i, row_p, strict=True)],
            probabilities=probabilities[n].tolist() if options.probabilities else None,
        )
        for n, (row_i, row_p) in enumerate(zip(indices.tolist(), values.tolist(), strict=True))
    ]
    timings = Timings(
        decode_ms=elapsed_ms(started, decoded),
        queue_ms=round(result.queue_s * 1e3, 3),
        inference_ms=round(result.run_s * 1e3, 3),
        total_ms=elapsed_ms(started, time.perf_counter()),
        batch_size=result.batch_size,
    )
    return PredictResponse(
        model=servable.name,
        version=servable.version,
        variant=servable.precision,  # type: ignore[arg-type]
        provider=servable.provider,
        predictions=predictions,
        timings=timings,
    )


def preprocess_response(servable: Servable, payload: PredictPayload) -> PreprocessResponse:
    """The one image of ``payload`` through the model's own pipeline, and the tensor as a PNG (blocking: decodes)."""
    if payload.images is None:
        raise InvalidInput("send an image: a tensor is already preprocessed")
    if len(payload.images) != 1:
        raise InvalidInput(f"send one image at a time, got {len(payload.images)}")
    tensor = servable.images.one(payload.images[0])
    png = io.BytesIO()
    servable.images.to_image(tensor).save(png, format="PNG")
    return PreprocessResponse(
        model=servable.name,
        version=servable.version,
        shape=list(tensor.shape),
        mean=float(tensor.mean()),
        std=float(tensor.std()),
        min=float(tensor.min()),
        max=float(tensor.max()),
        image="data:image/png;base64," + base64.b64encode(png.getvalue()).decode("ascii"),
    )
