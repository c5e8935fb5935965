"""``grpc.health.v1.Health``: the standard gRPC health service, for Kubernetes' gRPC probes and load balancers.

SERVING when the service is ready (as ``/v2/health/ready``: a model is ready, in every worker),
NOT_SERVING before that and once the worker has begun to drain; for the whole server (``""``) and
for ``inference.GRPCInferenceService``. Another service name is NOT_FOUND (Check) or
SERVICE_UNKNOWN (Watch), as the health protocol says. Watch sends the status, then every change
(checked every :data:`WATCH_INTERVAL_S`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..core.readiness import GroupReadiness, LocalReadiness
from .servicer import SERVICE

__all__ = ["HealthServicer"]

WATCH_INTERVAL_S = 0.5
_SERVICES = ("", SERVICE)
_Status = health_pb2.HealthCheckResponse.ServingStatus


class HealthServicer(health_pb2_grpc.HealthServicer):
    def __init__(self, readiness: LocalReadiness | GroupReadiness) -> None:
        self._readiness = readiness
        self._draining = False

    def drain(self) -> None:
        """From now on NOT_SERVING: the worker is stopping."""
        self._draining = True

    def _status(self, service: str) -> int:
        if service not in _SERVICES:
            return _Status.SERVICE_UNKNOWN
        ready = not self._draining and self._readiness.state().ready
        return _Status.SERVING if ready else _Status.NOT_SERVING

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        if request.service not in _SERVICES:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=self._status(request.service))

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        last = None
        while True:
            status = self._status(request.service)
            if status != last:
                yield health_pb2.HealthCheckResponse(status=status)
                last = status
            await asyncio.sleep(WATCH_INTERVAL_S)
