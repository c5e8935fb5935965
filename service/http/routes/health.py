"""Kubernetes-style probes: ``/healthz`` (alive while the process runs), ``/readyz`` (a model serves, in every
worker of a group: :mod:`service.core.readiness`)."""

from __future__ import annotations

from fastapi import APIRouter

from ...core.errors import ServiceNotReady
from ..deps import ReadinessDep
from ..schemas import ErrorResponse, LiveResponse, ReadyResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=LiveResponse, summary="Liveness")
async def healthz() -> LiveResponse:
    return LiveResponse()


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    summary="Readiness: a model is ready (in every worker)",
    responses={503: {"model": ErrorResponse, "description": "no model is ready yet"}},
)
async def readyz(readiness: ReadinessDep) -> ReadyResponse:
    state = readiness.state()
    if not state.ready:
        details = (
            {"models": state.models} if state.workers is None else {"models": state.models, "workers": state.workers}
        )
        raise ServiceNotReady(state.reason, details=details)
    return ReadyResponse(ready=True, models=state.models)
