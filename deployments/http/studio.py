"""Sweedle Studio, the web UI, served by the ingress at `/` and `/ui/`.

`make setup` builds it from `web/` into `studio_files/` next to this module (git-ignored; the
wheel includes it). The page is never cached and carries a Content-Security-Policy that keeps
every request on this origin; the files it loads have content-hashed names and are cached for a
year. Without a build, `/` says how to make one and the API works as ever.
"""

from __future__ import annotations

import html
import mimetypes
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from deployments.http.links import RequestLinks
from sweedle_core.errors import NotFound

STUDIO_FILES = Path(__file__).with_name("studio_files")
BUILD_COMMAND = "make setup (or: npm ci --prefix web && npm run build --prefix web)"

# Everything from this origin. The Draco decoder's worker starts from a blob: URL and compiles
# WebAssembly (hence worker-src blob: and 'wasm-unsafe-eval'); thumbnails and downloads are
# shown from blob: URLs (fetched with the key's header); the favicon is an empty data: URL.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "worker-src 'self' blob:",
        "img-src 'self' blob: data:",
        "connect-src 'self' blob:",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Names carry their content's hash: a new build is new names, so a file never changes.
ASSET_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}
mimetypes.add_type("application/wasm", ".wasm")

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
@router.get("/ui/", response_class=HTMLResponse)
async def page(request: Request) -> Response:
    template = _page_template()
    root = html.escape(RequestLinks(request).root, quote=True)
    if template is None:
        return HTMLResponse(_NOT_BUILT.replace("%ROOT%", root), 503, headers=PAGE_HEADERS)
    return HTMLResponse(template.replace("%ROOT%", root), headers=PAGE_HEADERS)


@router.get("/ui/assets/{name:path}")
async def asset(name: str) -> Response:
    path = _built_assets().get(name)
    if path is None:
        raise NotFound(f"Studio has no file {name!r}")
    return FileResponse(path, headers=ASSET_HEADERS)


@cache
def _page_template() -> str | None:
    try:
        return (STUDIO_FILES / "index.html").read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


@cache
def _built_assets() -> dict[str, Path]:
    """Every file of the build by its name under assets/: only these are served, so no
    request path reaches another file."""
    folder = STUDIO_FILES / "assets"
    if not folder.is_dir():
        return {}
    return {
        path.relative_to(folder).as_posix(): path for path in folder.rglob("*") if path.is_file()
    }


_NOT_BUILT = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sweedle Studio is not built</title></head>
<body>
<h1>Sweedle Studio is not built</h1>
<p>The web UI is built from <code>web/</code> with npm. Build it with
<code>{html.escape(BUILD_COMMAND)}</code>, then restart the service.</p>
<p>The API is running: see <a href="%ROOT%/docs">the API docs</a> and
<a href="%ROOT%/health">/health</a>.</p>
</body></html>
"""
