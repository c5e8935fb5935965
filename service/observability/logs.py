"""Logging of ``python -m service``: a line per record, in text or as JSON (``CNNSERVE_LOG_FORMAT``).

Every record says which process of a group wrote it (``worker 1``, ``supervisor``) and, while a
request is being answered, its id (``X-Request-ID``: :data:`REQUEST_ID`, set by
:class:`service.http.middleware.RequestMiddleware`) and the trace id of the current OpenTelemetry
span, when tracing is on. As JSON, a record is one object a line with ``time`` (UTC, ISO 8601),
``level``, ``logger``, ``message``, ``worker``, ``request_id``, ``trace_id`` and the fields a
record carries as ``extra`` (the access record: ``method``, ``path``, ``status``, ``model``,
``version``, ``variant``, ``duration_ms``), plus ``exception`` with the traceback.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

from opentelemetry import trace

from ..settings import LogFormat

__all__ = ["ACCESS_FIELDS", "REQUEST_ID", "JsonFormatter", "configure_logging"]

# The id of the request being answered, as its header carries it (bytes: decoded only for a record).
REQUEST_ID: ContextVar[bytes | None] = ContextVar("cnnserve_request_id", default=None)
ACCESS_FIELDS = ("method", "path", "status", "model", "version", "variant", "duration_ms")


class _Context(logging.Filter):
    """Adds the process, the request id and the trace id to every record."""

    def __init__(self, process: str | None) -> None:
        super().__init__()
        self.process = process

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.process
        request_id = REQUEST_ID.get()
        record.request_id = request_id.decode("ascii") if request_id is not None else None
        context = trace.get_current_span().get_span_context()
        record.trace_id = format(context.trace_id, "032x") if context.is_valid else None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line; fields without a value are left out."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "worker": getattr(record, "worker", None),
            "request_id": getattr(record, "request_id", None),
            "trace_id": getattr(record, "trace_id", None),
            **{name: getattr(record, name, None) for name in ACCESS_FIELDS},
        }
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return json.dumps({key: value for key, value in fields.items() if value is not None})


def configure_logging(level: str, process: str | None = None, format: LogFormat = "text") -> None:
    """Root logging at ``level``; ``process`` ("worker 1", "supervisor") goes into every record of a group's log."""
    handler = logging.StreamHandler()
    handler.addFilter(_Context(process))
    if format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        tag = f"[{process}] " if process else ""
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
