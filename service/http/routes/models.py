"""``GET /models``, ``/models/{name}`` (the card), ``/models/{name}/summary`` (``?depth``: blocks) and the samples.

``GET /models/{name}/samples`` lists a version's sample images (held-out test images published with
it) and ``GET /models/{name}/samples/{file}`` serves one: only files the card lists, checked
against their sha256 (a name is looked up in the card, never used as a path).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from repository import ModelCard, PaperRecord, Repository, SampleImage, SummaryRecord

from ...core.errors import ModelNotReady, SampleNotFound, SampleUnavailable, VersionNotFound
from ...core.model_manager import READY, ModelState
from ..deps import ManagerDep, ModelDep
from ..schemas import (
    ErrorResponse,
    ModelList,
    ModelOverview,
    SampleList,
    SampleOverview,
    VariantOverview,
    VersionOverview,
)
from ..summaries import FORMAT_QUERY, SUMMARY_RESPONSES, DepthQuery, SummaryFormat, summary_response

router = APIRouter(tags=["models"])

_NOT_FOUND = {404: {"model": ErrorResponse, "description": "unknown model"}}
_NO_CARD = {503: {"model": ErrorResponse, "description": "the model's card could not be read"}}


def _overview(state: ModelState) -> ModelOverview:
    card = state.card
    if card is None:
        return ModelOverview(name=state.name, status=state.status, reason=state.reason)
    versions = []
    for number in sorted(card.versions, reverse=True):
        loaded = state.versions.get(number)
        variants = []
        for precision, variant in card.versions[number].variants.items():
            servable = loaded.variants.get(precision) if loaded else None
            reason = (loaded.failed.get(precision) if loaded else None) or (
                None if variant.published else variant.reason
            )
            variants.append(
                VariantOverview(
                    precision=precision,
                    status=READY if servable else "UNAVAILABLE",
                    provider=servable.provider if servable else None,
                    reason=reason,
                    test_top1=variant.test_top1,
                )
            )
        versions.append(
            VersionOverview(
                version=number,
                status=READY if loaded else "UNAVAILABLE",
                reason=state.failed.get(number),
                variants=variants,
            )
        )
    latest = state.latest
    fp32 = card.versions[latest.version].variants.get("fp32") if latest else None
    checked = card.versions[latest.version].verification.handwriting if latest else None
    return ModelOverview(
        name=state.name,
        status=state.status,
        reason=state.reason,
        architecture=card.architecture.name,
        family=card.architecture.family,
        paper=PaperRecord.parse(card.architecture.paper),
        description=card.description or None,
        quick=card.quick,
        served_versions=sorted(state.versions),
        latest_version=latest.version if latest else None,
        versions=versions,
        provider=latest.default.provider if latest else None,
        input=card.input,
        num_classes=card.num_classes,
        accuracy=fp32.test_top1 if fp32 else None,
        handwriting={polarity: record.top1 for polarity, record in checked.items()} if checked else None,
        params=card.summary.total_params,
        macs=card.summary.total_macs,
        batching=card.batching,
        samples=len(card.versions[latest.version].samples) if latest else 0,
    )


def _card(model: ModelState) -> ModelCard:
    if model.card is None:
        raise ModelNotReady(f"model {model.name!r} has no readable card: {model.reason}")
    return model.card


@router.get("/models", response_model=ModelList, summary="Every model, with its status")
async def list_models(manager: ManagerDep) -> ModelList:
    return ModelList(models=[_overview(state) for state in manager.states()])


@router.get("/models/{name}", response_model=ModelCard, summary="A model's card", responses={**_NOT_FOUND, **_NO_CARD})
async def get_model(model: ModelDep) -> ModelCard:
    return _card(model)


@router.get(
    "/models/{name}/summary",
    response_model=SummaryRecord,
    summary="Per-layer shapes, parameters and multiply-adds",
    responses={
        **SUMMARY_RESPONSES,
        **_NOT_FOUND,
        422: {"model": ErrorResponse, "description": "invalid format or config, or a depth with no stored rows"},
        **_NO_CARD,
    },
)
async def get_summary(
    model: ModelDep,
    format: SummaryFormat = FORMAT_QUERY,
    config: Literal["trained", "canonical"] = Query(
        "trained", description="the served network, or the architecture's canonical configuration"
    ),
    depth: int | None = DepthQuery,
) -> Response | SummaryRecord:
    card = _card(model)
    return summary_response(card.canonical_summary if config == "canonical" else card.summary, format, depth)


VersionQuery = Annotated[int | None, Query(ge=1, description="a version of the card (default: the latest served)")]
_SAMPLE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "unknown model, version (of the card) or sample file"},
    422: {"model": ErrorResponse, "description": "invalid version"},
    503: {"model": ErrorResponse, "description": "the model's card could not be read, or the file does not match it"},
}


def _sample_version(model: ModelState, card: ModelCard, version: int | None) -> int:
    """``version`` if the card has it (404 if not); by default the latest served, as /predict uses."""
    if version is None:
        return model.latest.version if model.latest else card.latest_version
    if version not in card.versions:
        known = ", ".join(map(str, sorted(card.versions)))
        raise VersionNotFound(f"model {card.name!r} has no version {version}; versions: {known}")
    return version


@router.get(
    "/models/{name}/samples",
    response_model=SampleList,
    summary="A version's sample images: real held-out test images",
    responses=_SAMPLE_ERRORS,
)
async def list_samples(model: ModelDep, version: VersionQuery = None) -> SampleList:
    card = _card(model)
    number = _sample_version(model, card, version)
    samples = [
        SampleOverview(
            file=s.file, label=s.label, index=s.index, url=f"/models/{card.name}/samples/{s.file}?version={number}"
        )
        for s in card.versions[number].samples
    ]
    return SampleList(model=card.name, version=number, samples=samples)


@router.get(
    "/models/{name}/samples/{file}",
    response_class=Response,
    summary="One sample image (PNG)",
    responses={200: {"content": {"image/png": {}}, "description": "the image"}, **_SAMPLE_ERRORS},
)
async def get_sample(model: ModelDep, manager: ManagerDep, file: str, version: VersionQuery = None) -> Response:
    card = _card(model)
    number = _sample_version(model, card, version)
    listed = card.versions[number].samples
    sample = next((s for s in listed if s.file == file), None)
    if sample is None:
        raise SampleNotFound(
            f"model {card.name!r} version {number} has no sample {file!r}; samples: "
            f"{', '.join(s.file for s in listed) or 'none'}",
            details={"samples": [s.file for s in listed]},
        )
    data = await run_in_threadpool(_read_sample, manager.repository, card.name, number, sample)
    return Response(data, media_type="image/png")


def _read_sample(repository: Repository, name: str, version: int, sample: SampleImage) -> bytes:
    try:
        data = repository.sample_path(name, version, sample).read_bytes()
    except OSError as exc:
        raise SampleUnavailable(f"sample {sample.file} of {name!r} version {version}: {exc.strerror or exc}") from None
    if hashlib.sha256(data).hexdigest() != sample.sha256:
        raise SampleUnavailable(f"sample {sample.file} of {name!r} version {version} does not match its card")
    return data
