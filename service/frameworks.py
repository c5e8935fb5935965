"""The web frameworks whose internals the service uses, and the release series it is tested with.

* FastAPI: ``fastapi.dependencies.utils.request_params_to_args`` validates ``/predict``'s query
  options on the plain inference routes against the declared route (:mod:`service.http.inference`);
  ``build_middleware_stack``'s layers and what ``FastAPI.__call__`` adds to Starlette's
  (:mod:`service.http.application`).
* Starlette: ``get_route_path`` and the order of the app's middleware stack, whose innermost user
  middleware answers the inference routes (:mod:`service.http.inference`).
* uvicorn: ``HttpToolsProtocol.connection_made`` and its transport (:mod:`service.process.server`).

``pyproject.toml`` bounds each to the series below, and ``tests/service/test_frameworks.py`` fails,
naming the package and what to read, when the environment holds another: a new release is read
before it is trusted.
"""

from __future__ import annotations

import importlib.metadata

__all__ = ["TESTED_SERIES", "untested_versions"]

TESTED_SERIES = {"fastapi": "0.165", "starlette": "1.10", "uvicorn": "0.55"}


def untested_versions() -> dict[str, str]:
    """The installed version of each framework outside its tested series (none when all are tested)."""
    installed = {name: importlib.metadata.version(name) for name in TESTED_SERIES}
    return {
        name: version for name, version in installed.items() if version.split(".")[:2] != TESTED_SERIES[name].split(".")
    }
