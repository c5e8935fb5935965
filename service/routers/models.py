"""``GET /models``, ``GET /models/{name}`` (the card) and ``GET /models/{name}/summary`` (``?depth``: blocks)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from repository import ModelCard, PaperRecord, SummaryRecord

from ..deps import ManagerDep, ModelDep
from ..errors import ModelNotReady
from ..model_manager import READY, ModelState
from ..schemas import ErrorResponse, ModelList, ModelOverview, VariantOverview, VersionOverview
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
        params=card.summary.total_params,
        macs=card.summary.total_macs,
        batching=card.batching,
        samples=len(card.versions[card.latest_version].samples),
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
