"""GET /metrics: Prometheus text with requests, latency, errors per model and route, batches, queue."""

from __future__ import annotations

import re

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.xdist_group("service")


def test_metrics_are_labelled_by_model_and_route(client: httpx.Client, cards, grey_model: str) -> None:
    x = np.zeros((1, *cards[grey_model].input.shape), np.float32).tolist()
    assert client.post(f"/models/{grey_model}/predict", json={"tensor": x}).status_code == 200
    assert client.post(f"/models/{grey_model}/predict", json={"tensor": [1.0]}).status_code == 422
    assert client.post("/models/no-such-model/predict", json={"tensor": x}).status_code == 404
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    route = "/models/{name}/predict"
    assert f'cnnserve_requests_total{{model="{grey_model}",protocol="http",route="{route}",status="200"}}' in text
    assert f'cnnserve_request_errors_total{{model="{grey_model}",protocol="http",route="{route}",status="422"}}' in text
    assert (
        f'cnnserve_request_errors_total{{model="",protocol="http",route="{route}",status="404"}}' in text
    )  # unknown names are no label
    assert "no-such-model" not in text
    labels = f'le="0.001",model="{grey_model}",protocol="http",route="{route}"'
    assert f"cnnserve_request_duration_seconds_bucket{{{labels}}}" in text
    assert f'cnnserve_batch_size_count{{model="{grey_model}"}}' in text
    assert f'cnnserve_inference_duration_seconds_count{{model="{grey_model}"}}' in text
    assert f'cnnserve_queue_depth{{model="{grey_model}"}} 0.0' in text
    assert f'cnnserve_model_ready{{model="{grey_model}"}} 1.0' in text
    lag_count = re.search(r"^cnnserve_event_loop_lag_seconds_count (\S+)$", text, re.MULTILINE)
    assert lag_count and float(lag_count[1]) > 0, "the event loop's lag is watched from the start"
    client.get("/no/such/path/123")
    text = client.get("/metrics").text
    assert "/no/such/path/123" not in text and 'route="unmatched",status="404"' in text  # one series for all
