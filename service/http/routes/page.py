"""The web page (``/``), its files (``/static``) and the API docs (``/docs``, ``/redoc``), all from this package.

Nothing is fetched from elsewhere: Swagger UI and ReDoc are vendored under ``static/vendor`` (versions
and licences in its README), and a Content-Security-Policy tells the browser to load nothing but this
origin. The page is public like ``/docs``; the data it shows comes from the model endpoints, behind
the API key when one is set. None of these routes is in the OpenAPI schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

__all__ = ["DOCS_CSP", "PAGE_CSP", "STATIC", "router"]

STATIC = Path(__file__).resolve().parents[2] / "page"  # the page's files, served at /static

# The page runs no inline script or style: 'self' only (images also from data: and blob: URLs, which
# the page makes from the preprocessed input and the user's own image).
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
# Swagger UI and ReDoc start from an inline script and inject styles; they still reach only this origin.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_NO_CACHE = {"Cache-Control": "no-cache"}  # revalidated (ETag) on each load: a new release shows at once


class _RevalidatedFiles(StaticFiles):
    """StaticFiles whose answers say no-cache: a 304 costs little, a stale module after an upgrade breaks the page."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(_NO_CACHE)
        return response


_files = _RevalidatedFiles(directory=STATIC)
router = APIRouter(include_in_schema=False)
router.mount("/static", _files, name="static")


@router.get("/")
async def page(request: Request) -> Response:
    # Through the same files app as /static: the same ETag, 304 and no-cache handling for index.html.
    response = await _files.get_response("index.html", request.scope)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    response = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="cnnserve API",
        swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
        swagger_favicon_url="/static/img/favicon.svg",
        # validatorUrl: Swagger UI would otherwise send the schema to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
    )
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    response = get_redoc_html(
        openapi_url="/openapi.json",
        title="cnnserve API",
        redoc_js_url="/static/vendor/redoc/redoc.standalone.js",
        redoc_favicon_url="/static/img/favicon.svg",
        with_google_fonts=False,
    )
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response
