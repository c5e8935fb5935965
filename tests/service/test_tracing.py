"""Traces and structured logs, from real servers.

* In-process, with the OpenTelemetry SDK's in-memory exporter: a request's ``traceparent`` is
  continued by its server span, which holds ``decode``, ``queue wait``, ``inference`` and
  ``encode``; requests that share a batch each link their ``inference`` to the one ``batch
  inference`` span; without a tracer provider the app makes none and FastAPI's telemetry is off.
* ``python -m service`` exporting over OTLP/HTTP (``OTEL_EXPORTER_OTLP_ENDPOINT``) to a receiver
  on loopback that decodes what it gets with OpenTelemetry's own protobuf messages.
* ``CNNSERVE_LOG_FORMAT=json``: every line an object; ``X-Request-ID`` taken from the client or
  made, returned, and in the access record with the model, version, variant, status and duration.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import numpy as np
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service.observability.telemetry import fastapi_telemetry, tracer_provider_from_environment

from .live import LiveServer, make_settings
from .test_workers import Group

pytestmark = pytest.mark.xdist_group("service")

ROOT = Path(__file__).resolve().parents[2]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TENSOR = {"model": "lenet5", "tensor": np.zeros((1, 32, 32), np.float32).tolist()}
STEPS = ["decode", "queue wait", "inference", "encode"]


@pytest.fixture(scope="module")
def traced(repository: Path) -> Iterator[tuple[LiveServer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # A 50 ms queue delay: concurrent requests share a batch.
    settings = make_settings(repository, variants=["fp32"], max_queue_delay_microseconds=50_000)
    live = LiveServer(settings, tracer_provider=provider).start()
    yield live, exporter
    live.stop()


def _spans_of(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]


def _wait_for(exporter: InMemorySpanExporter, trace_id: int, count: int) -> list[ReadableSpan]:
    deadline = time.monotonic() + 10
    while len(spans := _spans_of(exporter, trace_id)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return spans


@pytest.mark.parametrize("route", ["/predict", "/v2/models/lenet5/infer"])
def test_a_traceparent_is_continued_through_decode_queue_inference_and_encode(
    traced: tuple[LiveServer, InMemorySpanExporter], route: str
) -> None:
    live, exporter = traced
    exporter.clear()
    body = TENSOR
    if route.startswith("/v2"):
        body = {"inputs": [{"name": "input", "shape": [1, 1, 32, 32], "datatype": "FP32", "data": [0.0] * 1024}]}
    with live.client() as client:
        response = client.post(route, json=body, headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    assert response.status_code == 200, response.text
    spans = _wait_for(exporter, int(TRACE_ID, 16), 1 + len(STEPS))
    server = next(s for s in spans if s.parent is not None and s.parent.span_id == int(PARENT_ID, 16))
    template = "/predict" if route == "/predict" else "/v2/models/{name}/infer"
    assert server.name == f"POST {template}" and server.attributes["http.route"] == template
    steps = sorted(
        (s for s in spans if s.parent is not None and s.parent.span_id == server.context.span_id),
        key=lambda s: s.start_time,
    )
    assert [s.name for s in steps] == STEPS
    assert all(s.start_time <= s.end_time for s in steps)
    assert steps[1].end_time <= steps[2].start_time + 1_000, "the inference starts when the wait ends"
    inference = steps[2]
    assert inference.attributes["cnnserve.model"] == "lenet5" and inference.attributes["cnnserve.variant"] == "fp32"
    [link] = inference.links
    [batch] = [s for s in exporter.get_finished_spans() if s.context.span_id == link.context.span_id]
    assert batch.name == "batch inference" and batch.context.trace_id != int(TRACE_ID, 16)
    assert batch.parent is None and batch.attributes["cnnserve.batch.inputs"] >= 1


def test_requests_that_share_a_batch_link_to_its_one_span(traced: tuple[LiveServer, InMemorySpanExporter]) -> None:
    live, exporter = traced
    exporter.clear()

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
            return await asyncio.gather(*(client.post("/predict", json=TENSOR) for _ in range(6)))

    assert [r.status_code for r in asyncio.run(send_all())] == [200] * 6
    deadline = time.monotonic() + 10
    while len(inferences := [s for s in exporter.get_finished_spans() if s.name == "inference"]) < 6:
        assert time.monotonic() < deadline, "six inference spans"
        time.sleep(0.02)
    batches = {s.context.span_id: s for s in exporter.get_finished_spans() if s.name == "batch inference"}
    linked = [s.links[0].context.span_id for s in inferences]
    assert set(linked) <= set(batches) and len({s.context.trace_id for s in inferences}) == 6
    shared = max(linked.count(span_id) for span_id in set(linked))
    assert shared >= 2, "requests queued together within the delay share one batch"
    for span_id in set(linked):
        assert batches[span_id].attributes["cnnserve.batch.requests"] == linked.count(span_id)


def test_without_a_provider_there_is_no_tracing(client: httpx.Client, server: LiveServer) -> None:
    assert server.app.state.dataplane.span("decode") is server.app.state.dataplane.span("encode"), "one no-op"
    assert client.post("/predict", json=TENSOR).status_code == 200


class _Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: decodes each export with OpenTelemetry's own protobuf messages."""

    received: ClassVar[list[ExportTraceServiceRequest]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        type(self).received.append(message)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_spans_leave_over_otlp_http(tiny_repository: Path, tmp_path: Path) -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    _Receiver.received.clear()
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_port}",
        "OTEL_SERVICE_NAME": "cnnserve-test",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    service = Group(tiny_repository, tmp_path / "service.log", workers=1, environment=otel)
    service.wait(service.ready, what="ready")
    try:
        model = httpx.get(f"{service.url}/models").json()["models"][0]
        shape = model["input"]["shape"]
        tensor = np.zeros(shape, np.float32).tolist()
        headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
        response = httpx.post(
            f"{service.url}/predict", json={"model": model["name"], "tensor": tensor}, headers=headers
        )
        assert response.status_code == 200, response.text
    finally:
        service.stop()  # the shutdown exports what is still buffered
        receiver.shutdown()
    log = service.log()
    spans = [
        (span.name, span.trace_id.hex(), {a.key: a.value.string_value for a in resource.resource.attributes})
        for message in _Receiver.received
        for resource in message.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    in_trace = {name for name, trace_id, _ in spans if trace_id == TRACE_ID}
    assert {"POST /predict", *STEPS} <= in_trace, (spans, log[-2000:])
    assert "batch inference" in {name for name, _, _ in spans}
    assert all(resource["service.name"] == "cnnserve-test" for _, _, resource in spans)


def test_json_logs_carry_the_request_id_and_the_access_record(tiny_repository: Path, tmp_path: Path) -> None:
    service = Group(tiny_repository, tmp_path / "service.log", workers=1, log_format="json", access_log="true")
    service.wait(service.ready, what="ready")
    try:
        model = httpx.get(f"{service.url}/models").json()["models"][0]
        tensor = np.zeros(model["input"]["shape"], np.float32).tolist()
        body = {"model": model["name"], "tensor": tensor}
        given = httpx.post(f"{service.url}/predict", json=body, headers={"X-Request-ID": "client-id-42"})
        made = httpx.post(f"{service.url}/predict", json=body)
        refused = httpx.post(f"{service.url}/predict", json=body, headers={"X-Request-ID": "has space"})
        missing = httpx.get(f"{service.url}/models/nope")
    finally:
        service.stop()
    log = service.log()
    assert given.headers["x-request-id"] == "client-id-42"
    assert made.headers["x-request-id"] and made.headers["x-request-id"] != "client-id-42"
    assert refused.headers["x-request-id"] != "has space", "an id a log cannot carry as it is is replaced"
    records = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    access = {r["request_id"]: r for r in records if r["logger"] == "service.access"}
    record = access["client-id-42"]
    assert record["status"] == 200 and record["model"] == model["name"] and record["version"] >= 1
    assert record["variant"] == "fp32" and record["duration_ms"] > 0 and record["path"] == "/predict"
    assert access[made.headers["x-request-id"]]["status"] == 200
    assert access[missing.headers["x-request-id"]]["status"] == 404
    assert any(r["logger"].startswith("uvicorn") for r in records), "uvicorn's own records are JSON too"


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"OTEL_SERVICE_NAME": "x"},
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
        {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
    ],
    ids=["nothing", "a name alone", "exporter none", "sdk disabled"],
)
def test_tracing_stays_off_unless_the_environment_asks(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]
) -> None:
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert tracer_provider_from_environment() is None
    assert fastapi_telemetry(None) == {"tracing": False, "tracer_provider": None, "metrics": False, "logs": False}
