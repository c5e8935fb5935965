"""``python -m service [--repository DIR] [--host H] [--port P]``: serve the repository.

Flags override the ``CNNSERVE_*`` environment; everything else is set there (docs/service.md).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from .app import create_app
from .settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m service", description="Serve a cnnserve model repository.")
    parser.add_argument(
        "--repository", type=Path, help="model repository (CNNSERVE_REPOSITORY, default model_repository)"
    )
    parser.add_argument("--host", help="address to listen on (CNNSERVE_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (CNNSERVE_PORT, default 8000)")
    parser.add_argument(
        "--log-level", choices=["critical", "error", "warning", "info", "debug"], help="CNNSERVE_LOG_LEVEL"
    )
    args = parser.parse_args(argv)
    overrides = {key: value for key, value in vars(args).items() if value is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        parser.error(f"invalid settings:\n{exc}")
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        timeout_graceful_shutdown=settings.graceful_shutdown_s,
    )


if __name__ == "__main__":
    main()
