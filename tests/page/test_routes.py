"""The page's routes without a browser: what `/`, `/static`, `/docs` and `/redoc` send, and that the page's
own files name nothing outside the server."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.http.routes.page import DOCS_CSP, PAGE_CSP, STATIC
from tests.deploy import dockerfile as df
from tests.service.live import LiveServer, make_settings

OWN_FILES = [p for p in STATIC.rglob("*") if p.is_file() and "vendor" not in p.parts]
# The only absolute URLs in the page's own files: the SVG namespace.
ALLOWED_URLS = {"http://www.w3.org/2000/svg"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A real server on an empty repository, with an API key."""
    empty = tmp_path_factory.mktemp("empty-repository")
    server = LiveServer(make_settings(empty, api_key="page-test-key")).start(ready=False)
    with server.client() as c:
        yield c
    server.stop()


def test_the_page_is_public_with_a_strict_csp(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == PAGE_CSP
    assert "default-src 'self'" in PAGE_CSP and "unsafe" not in PAGE_CSP
    assert '<script type="module" src="/static/js/main.js">' in response.text
    # The data stays behind the key; the page and its files do not need it.
    assert client.get("/models").status_code == 401
    assert client.get("/static/js/main.js").headers["content-type"].startswith("text/javascript")


def test_files_are_revalidated(client: httpx.Client) -> None:
    for path in ("/", "/static/js/main.js"):
        response = client.get(path)
        assert response.headers["cache-control"] == "no-cache"
        again = client.get(path, headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304, path


def test_the_page_is_not_in_the_openapi_schema(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not {"/", "/docs", "/redoc"} & set(paths)
    assert not [p for p in paths if p.startswith("/static")]


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_use_the_vendored_files(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == DOCS_CSP
    assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert assets and all(a.startswith("/static/") for a in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "googleapis" not in response.text and "cdn." not in response.text


def test_every_file_the_page_names_is_served(client: httpx.Client) -> None:
    index = (STATIC / "index.html").read_text()
    named = set(re.findall(r'(?:src|href)="(/static/[^"]+)"', index))
    for script in STATIC.glob("js/**/*.js"):
        folder = "/static/" + str(script.parent.relative_to(STATIC)) + "/"
        for target in re.findall(r'(?:from|import\()\s*"(\.{1,2}/[^"]+)"', script.read_text()):
            named.add(_join(folder, target))
    assert len(named) > 10
    for url in sorted(named):
        assert client.get(url).status_code == 200, url


def _join(folder: str, relative: str) -> str:
    parts = folder.strip("/").split("/")
    for piece in relative.split("/"):
        if piece == "..":
            parts.pop()
        elif piece != ".":
            parts.append(piece)
    return "/" + "/".join(parts)


@pytest.mark.parametrize("path", OWN_FILES, ids=lambda p: str(p.relative_to(STATIC)))
def test_the_page_names_nothing_outside_the_server(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    urls = set(re.findall(r"https?://[^\s\"'`)<>]+", text)) - ALLOWED_URLS
    assert not urls, f"{path.name} names {urls}: the page must load nothing from elsewhere"


def test_vendored_files_keep_their_licences() -> None:
    for library in ("swagger-ui", "redoc"):
        assert (STATIC / "vendor" / library / "LICENSE").is_file(), library
    readme = (STATIC / "vendor" / "README.md").read_text()
    assert "swagger-ui-dist@5.35.0" in readme and "redoc@2.5.2" in readme


def test_the_page_ships_with_the_package_and_the_images() -> None:
    """Package data takes every file under static/ (no build step makes them), and both runtime images
    copy service/ whole."""
    pyproject = tomllib.loads((STATIC.parents[1] / "pyproject.toml").read_text())
    assert "page/**/*" in pyproject["tool"]["setuptools"]["package-data"]["service"]
    stages = df.parse()
    for target in ("cpu", "gpu"):
        copied = [source for copy in df.copies(stages, df.stage(stages, target)) for source in copy.sources]
        assert "service/" in copied, target
