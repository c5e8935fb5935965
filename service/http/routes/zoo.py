"""``GET /zoo``, ``/zoo/{arch}`` and ``/zoo/{arch}/summary``: every architecture of the zoo, served or not."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from repository import ArchitectureEntry, CatalogIndex, SummaryRecord

from ..deps import CatalogDep
from ..schemas import ErrorResponse
from ..summaries import FORMAT_QUERY, SUMMARY_RESPONSES, DepthQuery, SummaryFormat, summary_response

router = APIRouter(tags=["zoo"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "not an architecture of the zoo (the message lists them)"}
}


@router.get("/zoo", response_model=CatalogIndex, summary="Every architecture of the zoo, served or not")
async def zoo_index(zoo: CatalogDep) -> CatalogIndex:
    return zoo.index


@router.get(
    "/zoo/{arch}", response_model=ArchitectureEntry, summary="One architecture of the zoo", responses=_NOT_FOUND
)
async def zoo_entry(arch: str, zoo: CatalogDep) -> ArchitectureEntry:
    return zoo.entry(arch)


@router.get(
    "/zoo/{arch}/summary",
    response_model=SummaryRecord,
    summary="An architecture's canonical per-layer summary",
    responses={
        **SUMMARY_RESPONSES,
        **_NOT_FOUND,
        422: {"model": ErrorResponse, "description": "invalid format, or a depth with no stored rows"},
    },
)
def zoo_summary(
    arch: str, zoo: CatalogDep, format: SummaryFormat = FORMAT_QUERY, depth: int | None = DepthQuery
) -> Response | SummaryRecord:
    # Not async: FastAPI runs it in a worker thread, and reading a summary not yet cached takes
    # milliseconds (EfficientNet-B7's: 23 ms), which the event loop should not wait for.
    return summary_response(zoo.summary(arch), format, depth)
