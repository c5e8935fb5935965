"""``deploy/prometheus/`` for real: promtool checks and unit-tests the rules, and a real Prometheus scrapes cnnserve.

* ``promtool check config`` and ``check rules`` accept the files as shipped;
* ``promtool test rules`` runs ``tests/alerts-test.yml``, and every alert of ``alerts.yml`` has a
  test there (one instance that must fire and one that must not);
* end to end: Debian's Prometheus server scrapes a real ``python -m service --workers 2`` every
  second while it serves a load (answers, 4xx, a client that goes away mid-upload), evaluates
  the recording rules and alerts of ``deploy/prometheus/``, and every recording rule and every
  expression of the Grafana dashboard (``deploy/grafana/``) answers with data through its HTTP
  API; no alert fires on a healthy service.

Debian's ``prometheus`` package has both programs; ``.ci/run`` installs it. Under ``CI=true`` a
missing one fails the tests instead of skipping them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from tests.service.test_workers import Group, _free_port

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prometheus")]

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "cnnserve.json"
RULE_FILES = [PROMETHEUS / "recording-rules.yml", PROMETHEUS / "alerts.yml"]


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is missing: .ci/run installs Debian's prometheus package")
        pytest.skip(f"{name} is not installed (apt-get install prometheus)")
    return found


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)


def _rules(path: Path) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_config_and_the_rules() -> None:
    promtool = _tool("promtool")
    for argv in (("check", "config", str(PROMETHEUS / "prometheus.yml")), ("check", "rules", *map(str, RULE_FILES))):
        result = _run(promtool, *argv)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_unit_tests_and_they_pass() -> None:
    promtool = _tool("promtool")
    tests = PROMETHEUS / "tests" / "alerts-test.yml"
    alerts = {rule["alert"] for rule in _rules(PROMETHEUS / "alerts.yml")}
    tested = {
        case["alertname"] for test in yaml.safe_load(tests.read_text())["tests"] for case in test["alert_rule_test"]
    }
    assert alerts == tested, f"alerts without a unit test: {sorted(alerts - tested)}"
    for rule in _rules(PROMETHEUS / "alerts.yml"):
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
    result = _run(promtool, "test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr


class Prometheus:
    """Debian's Prometheus server scraping ``target`` every second with the shipped rules."""

    def __init__(self, target: str, work: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in RULE_FILES],
            "scrape_configs": [{"job_name": "cnnserve", "static_configs": [{"targets": [target]}]}],
        }
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = work / "prometheus.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [
                    _tool("prometheus"),
                    f"--config.file={work / 'prometheus.yml'}",
                    f"--storage.tsdb.path={work / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def alerts(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


@pytest.fixture(scope="module")
def scraped(quick_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Group, Prometheus]]:
    _tool("prometheus")
    work = tmp_path_factory.mktemp("prometheus")
    group = Group(quick_repository, work / "service.log")
    group.wait(group.ready, what="ready")
    prometheus = Prometheus(f"127.0.0.1:{group.port}", work)
    yield group, prometheus
    prometheus.stop()
    group.stop()


def _load(url: str, seconds: float) -> None:
    """Answers for both models, some client errors, and a client that goes away mid-upload."""
    x = np.zeros((1, 1, 32, 32), np.float32).tolist()
    rgb = np.zeros((1, 3, 32, 32), np.float32).tolist()
    with httpx.Client(base_url=url, timeout=30) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert client.post("/predict", json={"model": "lenet5", "tensor": x}).status_code == 200
            assert client.post("/predict", json={"model": "resnet18", "tensor": rgb}).status_code == 200
            assert client.post("/predict", json={"model": "lenet5", "tensor": [1.0]}).status_code == 422
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 9999\r\n\r\n\x89PNG")
    time.sleep(0.2)
    sock.close()


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", ())]


def test_the_dashboard_is_provisioning_ready() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "cnnserve" and dashboard["templating"]["list"][0]["type"] == "datasource"
    rows = [panel["title"] for panel in dashboard["panels"] if panel["type"] == "row"]
    assert rows == ["Traffic", "Errors", "Latency", "Batching and queue", "Workers", "Models"]
    graphs = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert all(panel["targets"] and panel["datasource"]["uid"] == "${datasource}" for panel in graphs)
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    provider = yaml.safe_load((DASHBOARD.parents[1] / "provisioning" / "dashboards" / "cnnserve.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/cnnserve"


def test_prometheus_scrapes_the_workers_and_every_rule_and_panel_has_data(
    scraped: tuple[Group, Prometheus],
) -> None:
    group, prometheus = scraped
    _load(group.url, seconds=6)
    records = [rule["record"] for rule in _rules(PROMETHEUS / "recording-rules.yml")] + _dashboard_expressions()
    missing = records
    deadline = time.monotonic() + 60
    while missing and time.monotonic() < deadline:
        _load(group.url, seconds=1)
        missing = [record for record in records if not prometheus.query(record)]
    assert not missing, f"recording rules and panels without data: {missing}\n{prometheus.log.read_text()[-2000:]}"
    [up] = prometheus.query('up{job="cnnserve"}')
    assert up["value"][1] == "1"
    ready = {r["metric"]["model"]: r["value"][1] for r in prometheus.query("cnnserve_model_ready")}
    assert ready == {"lenet5": "1", "resnet18": "1"}, "both models on both workers"
    versions = prometheus.query("cnnserve_model_version_served == cnnserve_model_version_latest")
    assert {r["metric"]["model"] for r in versions} == {"lenet5", "resnet18"}
    ratio = {
        r["metric"]["model"]: float(r["value"][1]) for r in prometheus.query("cnnserve:request_errors:ratio_rate5m")
    }
    assert ratio == {"lenet5": 0.0, "resnet18": 0.0}, "422s are the clients' errors, not the service's"
    firing = [a["labels"]["alertname"] for a in prometheus.alerts() if a["state"] == "firing"]
    assert firing == [], firing
