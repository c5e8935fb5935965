"""``inference.GRPCInferenceService``: the Open Inference Protocol's RPCs over the service's data plane.

Each unary RPC goes through :func:`_rpc`, this front end's one pipeline (as
:class:`service.http.middleware.RequestMiddleware` is HTTP's): the API key from the metadata
(``x-api-key`` or ``authorization: Bearer``; never for ServerLive and ServerReady, as the HTTP
health routes), the service's errors as gRPC status codes (:mod:`.errors`), an unexpected one
logged and answered INTERNAL, and every call counted in the request metrics with
``protocol="grpc"``, its route the RPC's full method name and its status the HTTP status the
protocol's REST binding would have answered (so the error-ratio rules and alerts cover both).

ModelStreamInfer answers each request of the stream as soon as it is done (several may share a
batch), in the order they finish; an error is that response's ``error_message`` and the stream
goes on, as Triton does. ModelStatistics, the load and unload RPCs, shared memory, trace and log
settings are not served (UNIMPLEMENTED), as on HTTP.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc

from .. import __version__
from ..core import protocol
from ..core.auth import bearer_credentials, check_api_key
from ..core.dataplane import DataPlane
from ..core.errors import ServiceError, ServiceNotReady
from ..core.model_manager import ModelState
from ..core.readiness import GroupReadiness, LocalReadiness
from ..observability.metrics import Metrics
from .codec import decode_infer, encode_infer
from .errors import status_of

__all__ = ["SERVICE", "InferenceServicer"]

logger = logging.getLogger(__name__)

SERVICE = "inference.GRPCInferenceService"
STREAM_ROUTE = f"/{SERVICE}/ModelStreamInfer"

Request = TypeVar("Request")
Response = TypeVar("Response")


class Call:
    """What one RPC answers for, for its metrics: the model it resolved ("" until it does)."""

    __slots__ = ("model",)

    def __init__(self) -> None:
        self.model = ""


Handler = Callable[[Any, Any, grpc.aio.ServicerContext, Call], Awaitable[Any]]


def _rpc(open_: bool = False) -> Callable[[Handler], Callable[..., Awaitable[Any]]]:
    """A unary RPC's pipeline: the API key (unless ``open_``), errors as status codes, its metrics."""

    def decorate(method: Handler) -> Callable[..., Awaitable[Any]]:
        route = f"/{SERVICE}/{method.__name__}"

        @functools.wraps(method)
        async def handler(self: InferenceServicer, request: Any, context: grpc.aio.ServicerContext) -> Any:
            start = time.perf_counter()
            call = Call()
            status = 500
            try:
                if not open_:
                    self.authorize(context)
                response = await method(self, request, context, call)
                status = 200
                return response
            except ServiceError as exc:
                status = exc.status_code
                code, trailers = status_of(exc)
                await context.abort(code, exc.message, trailers)
            except asyncio.CancelledError:
                status = 499  # the client went away (nginx's "client closed request"), as over HTTP
                raise
            except Exception:
                logger.exception("unexpected error in %s", route)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error; the server log has its cause")
            finally:
                self.metrics.observe_request(call.model, route, status, time.perf_counter() - start, "grpc")

        return handler

    return decorate


class InferenceServicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, dataplane: DataPlane, readiness: LocalReadiness | GroupReadiness, metrics: Metrics) -> None:
        self.dataplane = dataplane
        self.readiness = readiness
        self.metrics = metrics
        self._key = dataplane.settings.api_key

    def authorize(self, context: grpc.aio.ServicerContext) -> None:
        """401 (UNAUTHENTICATED) unless no key is set or the metadata carries it."""
        if self._key is None:
            return
        metadata = dict(context.invocation_metadata() or ())
        check_api_key(self._key, metadata.get("x-api-key"), bearer_credentials(metadata.get("authorization")))

    def _model(self, name: str, call: Call) -> ModelState:
        """The named model's state (404 if unknown), which the call's metrics then name."""
        model = self.dataplane.manager.get(name)
        call.model = model.name
        return model

    # --- health and metadata ---------------------------------------------------------------------

    @_rpc(open_=True)
    async def ServerLive(self, request: Any, context: Any, call: Call) -> service_pb2.ServerLiveResponse:
        return service_pb2.ServerLiveResponse(live=True)

    @_rpc(open_=True)
    async def ServerReady(self, request: Any, context: Any, call: Call) -> service_pb2.ServerReadyResponse:
        state = self.readiness.state()
        if not state.ready:
            raise ServiceNotReady(state.reason)
        return service_pb2.ServerReadyResponse(ready=True)

    @_rpc()
    async def ModelReady(
        self, request: service_pb2.ModelReadyRequest, context: Any, call: Call
    ) -> service_pb2.ModelReadyResponse:
        model = self._model(request.name, call)
        model.servable(protocol.version_number(model, request.version))  # 404 / 503 unless it serves
        return service_pb2.ModelReadyResponse(ready=True)

    @_rpc()
    async def ServerMetadata(self, request: Any, context: Any, call: Call) -> service_pb2.ServerMetadataResponse:
        return service_pb2.ServerMetadataResponse(name="cnnserve", version=__version__, extensions=protocol.EXTENSIONS)

    @_rpc()
    async def ModelMetadata(
        self, request: service_pb2.ModelMetadataRequest, context: Any, call: Call
    ) -> service_pb2.ModelMetadataResponse:
        model = self._model(request.name, call)
        return json_format.ParseDict(
            protocol.model_metadata(model, request.version), service_pb2.ModelMetadataResponse()
        )

    @_rpc()
    async def ModelConfig(
        self, request: service_pb2.ModelConfigRequest, context: Any, call: Call
    ) -> service_pb2.ModelConfigResponse:
        model = self._model(request.name, call)
        servable = model.servable(protocol.version_number(model, request.version))
        config = protocol.model_config(servable, self.dataplane.settings.version_policy)
        return service_pb2.ModelConfigResponse(config=json_format.ParseDict(config, model_config_pb2.ModelConfig()))

    @_rpc()
    async def RepositoryIndex(
        self, request: service_pb2.RepositoryIndexRequest, context: Any, call: Call
    ) -> service_pb2.RepositoryIndexResponse:
        response = service_pb2.RepositoryIndexResponse()
        for state in self.dataplane.manager.states():
            if request.ready and state.status != "READY":
                continue
            version = str(max(state.versions)) if state.versions else ""
            response.models.add(name=state.name, version=version, state=state.status, reason=state.reason or "")
        return response

    # --- inference -------------------------------------------------------------------------------

    @_rpc()
    async def ModelInfer(
        self, request: service_pb2.ModelInferRequest, context: Any, call: Call
    ) -> service_pb2.ModelInferResponse:
        return await self._infer(request, call)

    async def _infer(self, request: service_pb2.ModelInferRequest, call: Call) -> service_pb2.ModelInferResponse:
        dataplane = self.dataplane
        model = dataplane.manager.get(request.model_name)
        number = protocol.version_number(model, request.model_version)
        servable = model.servable(number)
        call.model = servable.name
        with dataplane.span("decode"):
            decoded = decode_infer(request, servable.output_names)
            if decoded.variant is not None:
                servable = model.servable(number, decoded.variant)
            batch = dataplane.batch(servable, decoded.inputs)
        result = await dataplane.infer(servable, batch)
        with dataplane.span("encode"):
            return encode_infer(
                servable.name, servable.version, decoded.id, result.outputs, decoded.outputs, servable.labels
            )

    async def ModelStreamInfer(
        self, requests: AsyncIterator[service_pb2.ModelInferRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[service_pb2.ModelStreamInferResponse]:
        try:
            self.authorize(context)
        except ServiceError as exc:
            code, trailers = status_of(exc)
            await context.abort(code, exc.message, trailers)
        answers: asyncio.Queue[service_pb2.ModelStreamInferResponse | None] = asyncio.Queue()
        reader = asyncio.create_task(self._read_stream(requests, answers))
        try:
            while (answer := await answers.get()) is not None:
                yield answer
            await reader  # its exception, if reading failed
        finally:
            reader.cancel()

    async def _read_stream(
        self,
        requests: AsyncIterator[service_pb2.ModelInferRequest],
        answers: asyncio.Queue[service_pb2.ModelStreamInferResponse | None],
    ) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                async for request in requests:
                    group.create_task(self._stream_answer(request, answers))
        finally:
            answers.put_nowait(None)

    async def _stream_answer(
        self,
        request: service_pb2.ModelInferRequest,
        answers: asyncio.Queue[service_pb2.ModelStreamInferResponse | None],
    ) -> None:
        start = time.perf_counter()
        call = Call()
        status = 500
        try:
            answer = service_pb2.ModelStreamInferResponse(infer_response=await self._infer(request, call))
            status = 200
        except ServiceError as exc:
            status = exc.status_code
            answer = _stream_error(request, exc.message)
        except Exception:
            logger.exception("unexpected error in a ModelStreamInfer request")
            answer = _stream_error(request, "internal error; the server log has its cause")
        finally:
            self.metrics.observe_request(
                call.model, f"/{SERVICE}/ModelStreamInfer", status, time.perf_counter() - start, "grpc"
            )
        answers.put_nowait(answer)


def _stream_error(request: service_pb2.ModelInferRequest, message: str) -> service_pb2.ModelStreamInferResponse:
    """A stream's answer to a request that failed: the message, and the request's id to match it by."""
    response = service_pb2.ModelInferResponse(
        model_name=request.model_name, model_version=request.model_version, id=request.id
    )
    return service_pb2.ModelStreamInferResponse(error_message=message, infer_response=response)
