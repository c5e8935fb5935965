"""Kubernetes-style probes: ``/healthz`` (alive while the process runs), ``/readyz`` (a model serves)."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import ManagerDep
from ..errors import ServiceNotReady
from ..schemas import ErrorResponse, LiveResponse, ReadyResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=LiveResponse, summary="Liveness")
async def healthz() -> LiveResponse:
    return LiveResponse()


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    summary="Readiness: at least one model is ready",
    responses={503: {"model": ErrorResponse, "description": "no model is ready yet"}},
)
async def readyz(manager: ManagerDep) -> ReadyResponse:
    models = {state.name: state.status for state in manager.states()}
    if not manager.ready:
        raise ServiceNotReady("no model is ready yet", details={"models": models})
    return ReadyResponse(ready=True, models=models)
