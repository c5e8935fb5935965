"""A summary as the summary endpoints answer it: JSON or the Keras-style table, at a depth or at the leaves.

``GET /models/{name}/summary`` and ``GET /zoo/{arch}/summary`` share the options and the answer.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Query
from fastapi.responses import PlainTextResponse, Response

from repository import SummaryRecord, render_text

from ..core.errors import InvalidInput

__all__ = ["FORMAT_QUERY", "SUMMARY_RESPONSES", "DepthQuery", "SummaryFormat", "summary_response"]

SummaryFormat = Literal["json", "text"]
FORMAT_QUERY: Any = Query("json", description="json (models.summarize's schema) or a Keras-style table")
DEPTH_DESCRIPTION = (
    "rows for the modules this deep (blocks: residual, inception, MBConv) instead of every layer, as "
    "`python -m models summary NAME --depth N`; deeper than the deepest block: every layer"
)
DepthQuery: Any = Query(None, ge=1, description=DEPTH_DESCRIPTION)
SUMMARY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"example": 'Model: "lenet5"  input: 1x32x32\n=====...'}}},
}


def summary_response(summary: SummaryRecord, format: SummaryFormat, depth: int | None) -> Response | SummaryRecord:
    """``summary`` (at ``depth``) as JSON or text; 422 for a depth with no stored rows."""
    if depth is not None:
        try:
            summary = summary.at_depth(depth)
        except ValueError as exc:
            raise InvalidInput(str(exc), details={"depths": sorted(summary.depths)}) from None
    if format == "text":
        return PlainTextResponse(render_text(summary) + "\n")
    return summary
