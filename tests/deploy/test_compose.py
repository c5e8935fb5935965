"""docker-compose.yml, checked without Docker: the Compose schema, then what we rely on.

Schema: no package on PyPI ships the current compose-spec schema, so tests/deploy/schemas/
compose-spec.json is the compose-spec schema that docker-compose 1.29.2 (PyPI, Apache-2.0)
ships (compose/config/compose_spec.json, 2021). It knows every field this file uses (profiles,
GPU device reservations, health checks); the current Compose accepts every file it accepts, but
fields added since (``develop``, ``gpus``, healthcheck ``start_interval``, ...) would fail it, so
this file keeps to those it knows. ``${VAR:-default}`` is interpolated first, as Compose does.
Not checked: what only ``docker compose config`` (the compose-go loader) checks beyond the
schema, e.g. that the build context and Dockerfile exist (the tests below check those).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy import dockerfile as df

ROOT = df.ROOT
COMPOSE = ROOT / "docker-compose.yml"
# Its "$schema" names draft 2019-09 by a URL jsonschema does not know: the validator is chosen here.
SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
_INTERPOLATION = re.compile(r"\$(?:\$|\{(\w+)(?:(:?[-?])([^}]*))?\}|(\w+))")
DURATION = re.compile(r"^(\d+(h|m|s|ms|us))+$")


def interpolate(value: Any, env: dict[str, str], missing: list[str]) -> Any:
    """Compose's ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}`` and ``$$``."""
    if isinstance(value, dict):
        return {k: interpolate(v, env, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, missing) for v in value]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match) -> str:
        if match[0] == "$$":
            return "$"
        name = match[1] or match[4]
        operator, default = match[2], match[3]
        if operator in (":-", "-"):
            if name in env and (env[name] != "" or operator == "-"):
                return env[name]
            return default
        if name not in env:
            missing.append(name)
        return env.get(name, "")

    return _INTERPOLATION.sub(sub, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    missing: list[str] = []
    # An empty environment: the file must work without a .env file.
    config = interpolate(yaml.safe_load(COMPOSE.read_text()), {}, missing)
    assert not missing, f"variables without a default: {missing}"
    return config


@pytest.fixture(scope="module")
def stages() -> list[df.Stage]:
    return df.parse()


def test_compose_file_validates_against_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft201909Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft201909Validator(schema).iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_schema_rejects_what_it_should(compose: dict[str, Any]) -> None:
    # The vendored schema is strict (unknown keys fail), or the test above would prove little.
    schema = json.loads(SCHEMA.read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["cnnserve"]["deploy"]["resources"]["reservations"]["device"] = []
    assert not jsonschema.Draft201909Validator(schema).is_valid(broken)


def test_gpu_service_reserves_an_nvidia_gpu_and_is_the_default(compose: dict[str, Any]) -> None:
    gpu = compose["services"]["cnnserve"]
    assert "profiles" not in gpu, "`docker compose up` starts the GPU service"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert gpu["build"]["target"] == "gpu"
    assert gpu["environment"]["CNNSERVE_PROVIDERS"].startswith("CUDAExecutionProvider")


def test_cpu_service_is_a_profile_without_gpu(compose: dict[str, Any]) -> None:
    cpu = compose["services"]["cnnserve-cpu"]
    assert cpu["profiles"] == ["cpu"]
    assert cpu["build"]["target"] == "cpu"
    assert "reservations" not in cpu.get("deploy", {}).get("resources", {})
    assert cpu["environment"]["CNNSERVE_PROVIDERS"] == "CPUExecutionProvider"


@pytest.mark.parametrize("service", ["cnnserve", "cnnserve-cpu"])
def test_service_matches_its_image(compose: dict[str, Any], stages: list[df.Stage], service: str) -> None:
    spec = compose["services"][service]
    target = df.stage(stages, spec["build"]["target"])
    assert (ROOT / spec["build"]["context"] / "Dockerfile").is_file()
    args = {i.args.partition("=")[0] for s in stages for i in s.all("ARG")} | {"MODEL_SOURCE"}
    assert set(spec["build"].get("args", {})) <= args
    assert spec["build"]["args"]["MODEL_SOURCE"] in ("build", "context")
    image_env = df.environment(stages, target)
    env = spec["environment"]
    # The repository volume lands where the service looks, read-only.
    volumes = [v for v in spec["volumes"] if v.split(":")[1] == env["CNNSERVE_REPOSITORY"]]
    assert volumes and volumes[0].endswith(":ro"), spec["volumes"]
    assert env["CNNSERVE_REPOSITORY"] == image_env["CNNSERVE_REPOSITORY"]
    # The published ports are the ones the service listens on (HTTP, then gRPC), the image's own.
    assert [p.rsplit(":", 1)[1] for p in spec["ports"]] == [env["CNNSERVE_PORT"], env["CNNSERVE_GRPC_PORT"]]
    assert env["CNNSERVE_GRPC_PORT"] == image_env["CNNSERVE_GRPC_PORT"]
    assert set(target.all("EXPOSE")[-1].args.split()) == {env["CNNSERVE_PORT"], env["CNNSERVE_GRPC_PORT"]}
    assert env["CNNSERVE_HOST"] == "0.0.0.0"
    assert env["CNNSERVE_PROVIDERS"] == image_env["CNNSERVE_PROVIDERS"]
    # The health check is the image's (readiness), restarts are automatic.
    assert spec["healthcheck"]["test"] == ["CMD", *df.exec_form(target.last("HEALTHCHECK"))]
    for key in ("interval", "timeout", "start_period"):
        assert DURATION.match(spec["healthcheck"][key]), spec["healthcheck"][key]
    assert spec["restart"] == "unless-stopped"
    assert all(isinstance(v, str) for v in env.values()), "environment values are strings"


@pytest.mark.parametrize("service", ["cnnserve", "cnnserve-cpu"])
def test_workers_follow_the_cpu_limit(compose: dict[str, Any], service: str) -> None:
    spec = compose["services"][service]
    assert spec["environment"]["CNNSERVE_WORKERS"] == "0", "0: a worker per CPU of the limit"
    limits = spec["deploy"]["resources"]["limits"]
    cpus = float(limits["cpus"])
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    memory = float(limits["memory"][:-1]) * units[limits["memory"][-1].lower()]
    # Each worker holds every model: 1.4-2.9 GiB for the default set (docs/service.md).
    assert memory >= math.ceil(cpus) * 2.5 * 2**30


def test_prometheus_is_an_optional_service_with_the_shipped_rules(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    assert prometheus["profiles"] == ["monitoring"], "`docker compose up` does not start it"
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    targets = set(job["static_configs"][0]["targets"])
    assert (
        targets
        == {f"{name}:8000" for name in ("cnnserve", "cnnserve-cpu")}
        <= {f"{s}:8000" for s in compose["services"]}
    )
    assert all((ROOT / "deploy" / "prometheus" / f).exists() for f in config["rule_files"])
