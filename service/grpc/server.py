"""The gRPC front end's server: ``grpc.aio`` in the worker's own event loop, beside uvicorn.

Started by the app's lifespan once the models are being loaded (a replacement worker's once they
are), so it shares the worker's data plane and batch queues with HTTP; stopped by the lifespan's
shutdown, after uvicorn's graceful shutdown of HTTP: the health service says NOT_SERVING, new
RPCs are refused and those in flight get ``CNNSERVE_GRACEFUL_SHUTDOWN_S`` to finish.

In a group of workers each binds its own socket to the port with ``SO_REUSEPORT`` (gRPC's
``grpc.so_reuseport``), as for HTTP (:func:`service.process.supervisor.bind_port`), and the kernel
spreads connections over them; a lone server binds without it, so a port already taken is an
error rather than a port silently shared. Messages over ``CNNSERVE_MAX_BODY_BYTES`` are refused
with RESOURCE_EXHAUSTED by gRPC itself, before they are read.
"""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health_pb2_grpc
from tritonclient.grpc import service_pb2_grpc

from ..core.dataplane import DataPlane
from ..core.readiness import GroupReadiness, LocalReadiness
from ..observability.metrics import Metrics
from .health import HealthServicer
from .servicer import InferenceServicer

__all__ = ["GrpcServer", "address"]

logger = logging.getLogger(__name__)


def address(host: str, port: int) -> str:
    """gRPC's form of ``host:port`` (an IPv6 address in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GrpcServer:
    def __init__(
        self,
        dataplane: DataPlane,
        readiness: LocalReadiness | GroupReadiness,
        metrics: Metrics,
        reuse_port: bool,
    ) -> None:
        settings = dataplane.settings
        self.address = address(settings.host, settings.grpc_port)
        self._health = HealthServicer(readiness)
        self._server = grpc.aio.server(
            options=[
                ("grpc.so_reuseport", int(reuse_port)),
                ("grpc.max_receive_message_length", settings.max_body_bytes),
            ]
        )
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            InferenceServicer(dataplane, readiness, metrics), self._server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)

    async def start(self) -> None:
        try:
            self._server.add_insecure_port(self.address)
        except RuntimeError as exc:
            raise RuntimeError(
                f"gRPC cannot listen on {self.address} ({exc}): is the port taken? "
                "CNNSERVE_GRPC_PORT sets it, 0 turns gRPC off"
            ) from None
        await self._server.start()
        logger.info("Open Inference Protocol over gRPC on %s", self.address)

    async def stop(self, grace_s: float) -> None:
        """NOT_SERVING, no new RPCs, and those in flight answered within ``grace_s`` seconds."""
        self._health.drain()
        await self._server.stop(grace_s)
