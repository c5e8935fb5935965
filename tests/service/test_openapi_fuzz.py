"""The OpenAPI document is the contract clients are generated from: Schemathesis fuzzes the real service with it.

Every operation of the app's OpenAPI document gets generated requests (positive and negative
data, in every media type its body declares) sent over HTTP to a real server on loopback that
serves the session's quick repository (lenet5 and resnet18). Every response must:

* never be a 5xx (``not_a_server_error``);
* match the schema documented for its status and media type (``response_schema_conformance``);
* have a documented status (``status_code_conformance``) and content type (``content_type_conformance``).

Path parameters are drawn from the real model names and version half the time (anything
otherwise), so requests reach the models as well as the 404s. A second server requires an API
key the fuzzer does not know: every protected operation must document its 401. The run is
bounded and repeatable: a fixed seed, Hypothesis derandomized, no example database, a fixed
number of examples per operation. Nothing is excluded from fuzzing.
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


def _schema(max_examples: int) -> schemathesis.BaseSchema:
    """The app's OpenAPI document (the one /openapi.json serves: built by the same code, no server needed)."""
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


# 25 examples per operation: about 900 requests, well under a minute on 2 cores. Behind an unknown
# key every answer is the same 401 whatever the input, so 5 show it.
open_api = _schema(max_examples=25)
keyed_api = _schema(max_examples=5)


@pytest.fixture(scope="module")
def key_server(repository: Path) -> Iterator[LiveServer]:
    live = LiveServer(make_settings(repository, api_key="not-for-the-fuzzer", variants=["fp32"])).start()
    yield live
    live.stop()


@open_api.parametrize()
def test_the_open_service_keeps_its_contract(case: schemathesis.Case, server: LiveServer) -> None:
    case.call_and_validate(base_url=server.url, checks=CHECKS)


@keyed_api.parametrize()
def test_a_service_with_an_api_key_keeps_its_contract(case: schemathesis.Case, key_server: LiveServer) -> None:
    case.call_and_validate(base_url=key_server.url, checks=CHECKS)
