"""The OpenAPI document is the contract clients are generated from: Schemathesis fuzzes the real service with it.

Every operation of the app's OpenAPI document gets generated requests (positive and negative
data, in every media type its body declares) sent over HTTP to a real server on loopback that
serves the session's quick repository (lenet5 and resnet18). Every response must:

* never be a 5xx (``not_a_server_error``);
* match the schema documented for its status and media type (``response_schema_conformance``);
* have a documented status (``status_code_conformance``) and content type (``content_type_conformance``).

Two servers are fuzzed: the shared one, open (no API key, as ``make serve`` runs), and one that
requires a key the fuzzer does not know, where every protected operation must answer its
documented 401. Path parameters are drawn from the real model names and version half the time
(anything otherwise), so requests reach the models as well as the 404s. The run is bounded and
repeatable: a fixed seed, Hypothesis derandomized, no example database, ``MAX_EXAMPLES`` per
operation and server. Nothing is excluded from fuzzing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from service.app import create_app
from service.settings import Settings
from tests.conftest import QUICK_MODELS

from .live import LiveServer, make_settings

# Its own group: under `make test` the fuzz runs beside the other service tests, on its own servers.
pytestmark = pytest.mark.xdist_group("openapi-fuzz")

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
MAX_EXAMPLES = 25  # about 1,000 requests to each server: well under a minute on 2 cores


def _schema(max_examples: int) -> schemathesis.BaseSchema:
    """The app's OpenAPI document: the one /openapi.json serves (the same code builds it; no server needed)."""
    config = SchemathesisConfig.from_dict(
        {
            "seed": 20240612,
            "generation": {"mode": "all", "max-examples": max_examples, "deterministic": True, "database": "none"},
            "dictionaries": {"models": {"values": list(QUICK_MODELS)}, "versions": {"values": ["1"]}},
            "parameters": {
                "path.name": {"dictionary": "models", "probability": 0.5},
                "path.version": {"dictionary": "versions", "probability": 0.5},
            },
        }
    )
    document = create_app(Settings(repository=Path("model_repository"))).openapi()
    return schemathesis.openapi.from_dict(document, config=config)


api = _schema(MAX_EXAMPLES)


@pytest.fixture(scope="module")
def servers(server: LiveServer, repository: Path) -> Iterator[dict[str, LiveServer]]:
    """The shared server (no API key, as `make serve` runs) and one whose key the fuzzer does not know."""
    keyed = LiveServer(make_settings(repository, api_key="not-for-the-fuzzer", variants=["fp32"])).start()
    yield {"open": server, "keyed": keyed}
    keyed.stop()


# The parametrization also gives each operation's test its own node id: without one, Schemathesis
# 4.32's items under pytest 9.2 all share the function's, and pytest-xdist (`make test`) would run
# two of them.
@pytest.mark.parametrize("kind", ["open", "keyed"])
@api.parametrize()
def test_the_service_keeps_its_contract(case: schemathesis.Case, kind: str, servers: dict[str, LiveServer]) -> None:
    case.call_and_validate(base_url=servers[kind].url, checks=CHECKS)
