"""FastAPI dependencies as ``Annotated`` aliases: what routes get instead of module globals.

Everything lives on ``app.state``, put there by ``create_app`` and its lifespan.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ..core.auth import check_api_key
from ..core.catalog import ArchitectureCatalog
from ..core.dataplane import DataPlane
from ..core.model_manager import ModelManager, ModelState
from ..core.readiness import GroupReadiness, LocalReadiness
from ..observability.metrics import Metrics
from ..settings import Settings
from ..visualize import Views

__all__ = [
    "CatalogDep",
    "DataPlaneDep",
    "ManagerDep",
    "MetricsDep",
    "ModelDep",
    "ReadinessDep",
    "SettingsDep",
    "ViewsDep",
    "require_api_key",
]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_manager(request: Request) -> ModelManager:
    return request.app.state.manager


async def get_dataplane(request: Request) -> DataPlane:
    return request.app.state.dataplane


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_zoo(request: Request) -> ArchitectureCatalog:
    return request.app.state.zoo


async def get_views(request: Request) -> Views:
    return request.app.state.views


async def get_readiness(request: Request) -> LocalReadiness | GroupReadiness:
    return request.app.state.readiness


SettingsDep = Annotated[Settings, Depends(get_settings)]
ManagerDep = Annotated[ModelManager, Depends(get_manager)]
DataPlaneDep = Annotated[DataPlane, Depends(get_dataplane)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
CatalogDep = Annotated[ArchitectureCatalog, Depends(get_zoo)]


ViewsDep = Annotated[Views, Depends(get_views)]


ReadinessDep = Annotated[LocalReadiness | GroupReadiness, Depends(get_readiness)]


async def get_model(name: str, manager: ManagerDep) -> ModelState:
    """The state of the model named in the path (404 if unknown); never a path on disk."""
    return manager.get(name)


ModelDep = Annotated[ModelState, Depends(get_model)]

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key (CNNSERVE_API_KEY)")
_bearer = HTTPBearer(auto_error=False, description="the API key as a bearer token (CNNSERVE_API_KEY)")


async def require_api_key(
    settings: SettingsDep,
    api_key: Annotated[str | None, Security(_api_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> None:
    """401 unless the configured key comes as ``X-API-Key`` or ``Authorization: Bearer``; open when none is set."""
    check_api_key(settings.api_key, api_key, bearer.credentials if bearer else None)
