"""Every CNNSERVE_* variable the deployment files set is a setting of the service.

pydantic-settings ignores an unknown CNNSERVE_ variable, so a misspelt one (CNNSERVE_POLL_INTERVAL)
would silently leave the default in place; this catches it, and checks each value parses.
"""

from __future__ import annotations

import os

import pytest
import yaml

from tests.deploy import dockerfile as df
from tests.deploy.test_compose import COMPOSE, interpolate

ROOT = df.ROOT
PREFIX = "CNNSERVE_"


def _pod_env(doc: object) -> list[tuple[str, str | None]]:
    """name, value of every `env` entry anywhere in a Kubernetes object."""
    found: list[tuple[str, str | None]] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "env" and isinstance(value, list):
                found += [(e["name"], e.get("value")) for e in value]
            else:
                found += _pod_env(value)
    elif isinstance(doc, list):
        for item in doc:
            found += _pod_env(item)
    return found


def deployment_environments() -> list[tuple[str, dict[str, str | None]]]:
    stages = df.parse()
    found = [(f"Dockerfile ({t})", df.environment(stages, df.stage(stages, t))) for t in ("cpu", "gpu")]
    compose = interpolate(yaml.safe_load(COMPOSE.read_text()), {}, [])
    found += [
        (f"docker-compose.yml ({name})", service["environment"])
        for name, service in compose["services"].items()
        if name.startswith("cnnserve")  # the monitoring profile's Prometheus and Grafana are not cnnserve
    ]
    for path in sorted((ROOT / "deploy").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((f"{path.relative_to(ROOT)} ({doc['kind']})", dict(_pod_env(doc))))
    return found


@pytest.mark.parametrize("where,env", deployment_environments(), ids=lambda x: x if isinstance(x, str) else "")
def test_settings_exist_and_parse(where: str, env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch) -> None:
    from service.settings import Settings

    fields = {f"{PREFIX}{name.upper()}" for name in Settings.model_fields}
    for key in list(os.environ):
        if key.startswith(PREFIX):
            monkeypatch.delenv(key)
    ours = {k: v for k, v in env.items() if k.startswith(PREFIX)}
    unknown = set(ours) - fields
    assert not unknown, f"{where}: not settings of service/settings.py: {sorted(unknown)}"
    for key, value in ours.items():
        if value is not None:  # from a Secret: not known here
            monkeypatch.setenv(key, value)
    Settings()  # a value that does not parse fails here, as it would at start-up


def test_the_variables_are_documented() -> None:
    text = (ROOT / "docs" / "deployment.md").read_text()
    for name in ("CNNSERVE_REPOSITORY", "CNNSERVE_PORT", "CNNSERVE_PROVIDERS"):
        assert name in text, f"docs/deployment.md does not mention {name}"
