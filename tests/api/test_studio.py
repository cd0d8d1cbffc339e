"""Sweedle Studio as the ingress serves it, without a browser: the page with its
Content-Security-Policy and no caching, its hashed files cached for good, the path it is served
under, no reference to another origin, and a page that says how to build it when it is not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from deployments.http import studio
from deployments.http.app import create_app
from deployments.http.services import Services
from sweedle_core.config import Settings

BUILT = studio.STUDIO_FILES / "index.html"
pytestmark = pytest.mark.skipif(
    not BUILT.is_file(), reason=f"Studio is not built: {studio.BUILD_COMMAND}"
)
# The only absolute URL in the build: an XML namespace name, which nothing fetches.
NAMESPACES = {"http://www.w3.org/1999/xhtml"}


def client(root_path: str = "") -> TestClient:
    services = Services.without_ray(Settings(database_url="sqlite+aiosqlite://"))
    return TestClient(create_app(services), base_url="http://127.0.0.1", root_path=root_path)


def referenced(page: str) -> list[str]:
    return re.findall(r'(?:src|href|content)="([^"]*/ui/[^"]*)"', page)


def test_the_page_has_its_policy_and_is_never_cached() -> None:
    for path in ("/", "/ui/"):
        response = client().get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "'unsafe-inline'" not in policy and "https:" not in policy
        assert response.headers["cache-control"] == "no-cache"
        assert "<title>Sweedle Studio</title>" in response.text


def test_the_pages_files_are_served_with_hashed_names_and_long_caching() -> None:
    http = client()
    files = referenced(http.get("/").text)
    script = next(f for f in files if f.endswith(".js"))
    style = next(f for f in files if f.endswith(".css"))
    draco = next(f for f in files if "draco-" in f)
    assert re.search(r"/ui/assets/main-[A-Z0-9]{8}\.js$", script), script

    kinds = {script: "text/javascript", style: "text/css"}
    kinds[f"{draco}draco_decoder.wasm"] = "application/wasm"
    kinds[f"{draco}draco_wasm_wrapper.js"] = "text/javascript"
    for path, kind in kinds.items():
        response = http.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(kind), (path, response.headers)
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_the_page_names_its_files_under_the_path_it_is_served_at() -> None:
    page = client(root_path="/sweedle").get("/").text

    files = referenced(page)
    assert files and all(f.startswith("/sweedle/ui/") for f in files), files
    assert '<meta name="sweedle-root" content="/sweedle">' in page


def test_nothing_outside_the_build_is_served() -> None:
    http = client()
    for path in ("/ui/assets/nothing.js", "/ui/assets/..%2Findex.html", "/ui/assets/%2e%2e/x"):
        response = http.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"


def test_the_build_references_no_other_origin() -> None:
    for path in studio.STUDIO_FILES.rglob("*"):
        if path.suffix not in (".html", ".js", ".css"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        # Absolute and protocol-relative URLs (a quote, paren or = before the //).
        urls = set(
            re.findall(
                r"(?:https?:|(?<=[\"'`(=]))//[a-z0-9-]+(?:\.[a-z0-9-]+)+[^\s\"'`)]*", text, re.I
            )
        )
        assert urls <= NAMESPACES, (path.name, urls - NAMESPACES)
        if path.suffix == ".css":
            assert "@import" not in text and "url(" not in text, path.name


def test_without_a_build_the_page_says_how_to_make_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(studio, "STUDIO_FILES", tmp_path / "missing")
    studio._page_template.cache_clear()
    try:
        response = client().get("/")
        assert response.status_code == 503
        assert "npm run build --prefix web" in response.text
        assert client().get("/openapi.json").status_code == 200  # the API works on
    finally:
        studio._page_template.cache_clear()
