"""``python -m service [--repository DIR] [--host H] [--port P] [--workers N]``: serve the repository.

Flags override the ``CNNSERVE_*`` environment; everything else is set there (docs/service.md).
One worker runs in this process; several run under :class:`service.process.supervisor.Supervisor`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from .app import create_app
from .core.cpus import plan
from .observability.logs import configure_logging
from .process.server import uvicorn_config
from .process.supervisor import Supervisor
from .settings import Settings

logger = logging.getLogger("service")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m service", description="Serve a cnnserve model repository.")
    parser.add_argument(
        "--repository", type=Path, help="model repository (CNNSERVE_REPOSITORY, default model_repository)"
    )
    parser.add_argument("--host", help="address to listen on (CNNSERVE_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (CNNSERVE_PORT, default 8000)")
    parser.add_argument("--workers", type=int, help="server processes (CNNSERVE_WORKERS, default: one per usable CPU)")
    parser.add_argument(
        "--log-level", choices=["critical", "error", "warning", "info", "debug"], help="CNNSERVE_LOG_LEVEL"
    )
    args = parser.parse_args(argv)
    overrides = {key: value for key, value in vars(args).items() if value is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        parser.error(f"invalid settings:\n{exc}")
    cpus = plan(settings.workers, settings.intra_op_threads)
    settings = settings.model_copy(update={"workers": cpus.workers, "intra_op_threads": cpus.intra_op_threads})
    configure_logging(settings.log_level, "supervisor" if cpus.workers > 1 else None, settings.log_format)
    logger.info(
        "%d usable CPU(s): %d worker(s) x %d ONNX Runtime thread(s)", cpus.cpus, cpus.workers, cpus.intra_op_threads
    )
    if cpus.workers > 1:
        raise SystemExit(Supervisor(settings).run())
    server = uvicorn.Server(uvicorn_config(create_app(settings), settings, host=settings.host, port=settings.port))
    server.run()
    if not server.started:  # as uvicorn.run: the app's startup failed
        raise SystemExit(3)


if __name__ == "__main__":
    main()
