"""The OpenAPI document is the contract clients are generated from: Schemathesis fuzzes the real service with it.

Every operation of the app's OpenAPI document gets generated requests (positive and negative
data, in every media type its body declares) sent over HTTP to a real server on loopback that
serves the session's quick repository (lenet5 and resnet18). Every response must:

* never be a 5xx (``not_a_server_error``);
* match the schema documented for its status and media type (``response_schema_conformance``);
* have a documented status (``status_code_conformance``) and content type (``content_type_conformance``).

Two servers are fuzzed: the shared one, open (no API key, as ``make serve`` runs), and one that
requires a key the fuzzer does not know, where every protected operation must answer its
documented 401. Parameters are drawn from real values half the time (anything otherwise), so
requests reach the models and the views as well as the 404s and 422s: the model names and
version, the zoo's architectures, the quick models' layer names (and an empty name, which means
the default), the summaries' depths. Base64 images (OpenAPI's ``byte`` format) are real images
half the time: handwritten digits as PNG, a photo as JPEG, a 1x1 GIF, each encoded as a client
does. The run is bounded and repeatable: a fixed seed, Hypothesis derandomized, no example
database, ``MAX_EXAMPLES`` per operation and server. Nothing is excluded from fuzzing.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import schemathesis
from hypothesis import strategies as st
from PIL import Image
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
from sklearn.datasets import load_digits, load_sample_images

from service.app import create_app
from service.core.catalog import CATALOG_DIR
from service.settings import Settings
from tests.conftest import QUICK_MODELS

from .live import LiveServer, make_settings

# Its own group: under `make test` the fuzz runs beside the other service tests, on its own servers.
pytestmark = pytest.mark.xdist_group("openapi-fuzz")

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
MAX_EXAMPLES = 25  # about 1,000 requests to each server: well under a minute on 2 cores
VIEW_EXAMPLES = 100


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _encoded(image: Image.Image, format: str) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return _base64(buffer.getvalue())


def _real_images() -> list[str]:
    """Base64 images as clients send them: digits (PNG, white on black), a photo (JPEG), the smallest GIF."""
    digits = load_digits()
    images = [_encoded(Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8)), "PNG") for i in range(3)]
    photo = Image.fromarray(load_sample_images().images[0]).resize((64, 48))
    return [*images, _encoded(photo, "JPEG"), _encoded(Image.new("L", (1, 1)), "GIF")]


def _layer_names() -> list[str]:
    """The quick models' layer names as their summaries give them, and an empty name (the default)."""
    names = [
        layer["name"]
        for model in QUICK_MODELS
        for layer in json.loads((CATALOG_DIR / f"{model}.json").read_text())["layers"]
    ]
    return ["", *names[:: max(1, len(names) // 12)]]


def _schema(max_examples: int) -> schemathesis.BaseSchema:
    """The app's OpenAPI document: the one /openapi.json serves (the same code builds it; no server needed)."""
    schemathesis.openapi.format("byte", st.one_of(st.sampled_from(_real_images()), st.binary().map(_base64)))
    architectures = [entry["name"] for entry in json.loads((CATALOG_DIR / "index.json").read_text())["architectures"]]
    config = SchemathesisConfig.from_dict(
        {
            "seed": 20240612,
            "generation": {"mode": "all", "max-examples": max_examples, "deterministic": True, "database": "none"},
            "dictionaries": {
                "models": {"values": list(QUICK_MODELS)},
                "versions": {"values": ["1"]},
                "architectures": {"values": architectures},
                "layers": {"values": _layer_names()},
                "depths": {"values": [1, 2, 3, 4]},
            },
            # The views take an image and parameters that change what they compute: more examples there.
            "operations": [
                {
                    "include-path-regex": "/(activations|filters|occlusion)$",
                    "generation": {"max-examples": VIEW_EXAMPLES},
                }
            ],
            "parameters": {
                "path.name": {"dictionary": "models", "probability": 0.5},
                "path.version": {"dictionary": "versions", "probability": 0.5},
                "path.arch": {"dictionary": "architectures", "probability": 0.5},
                "query.layer": {"dictionary": "layers", "probability": 0.5},
                "query.depth": {"dictionary": "depths", "probability": 0.5},
            },
        }
    )
    document = create_app(Settings(repository=Path("model_repository"))).openapi()
    return schemathesis.openapi.from_dict(document, config=config)


api = _schema(MAX_EXAMPLES)
# ``?layers=`` alone (the default, as no parameter) or a few real names, an empty one possibly among them.
_LAYER_LISTS = st.one_of(st.just([""]), st.lists(st.sampled_from(_layer_names()), min_size=1, max_size=3))


@api.hook
def flatmap_query(context: schemathesis.HookContext, query: dict[str, Any] | None) -> st.SearchStrategy:
    """``layers`` (a list: dictionaries do not fill it) is real layer names half the time, an empty one among them."""
    operation = context.operation
    if operation is None or not operation.path.endswith("/activations"):
        return st.just(query)
    return st.one_of(st.just(query), _LAYER_LISTS.map(lambda names: {**(query or {}), "layers": names}))


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
