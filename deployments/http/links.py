"""The links answers carry (`download_url`, `status_url`, ...), built from the routes
themselves (`app.url_path_for`): a route's path is written once, in its router, and every link
includes the path the app is served at (a Serve `route_prefix`, the request's root path), so a
client follows it as given. Paths, not absolute URLs: behind a proxy the service does not know
the address it is reached by.

A route's path is looked up once per app, as a template (`url_path_for` walks every route: done
for each link of a page of 20 assets with their LODs, it was most of the page's time)."""

from __future__ import annotations

from fastapi import Request


class RequestLinks:
    """`sweedle_core.schemas.Links` for one request."""

    def __init__(self, request: Request) -> None:
        self._request = request
        # The path the app is served at ("" at the server's root).
        self.root = str(request.scope.get("root_path", "")).rstrip("/")
        self._templates: dict[tuple[str, ...], str] = request.app.state.link_templates

    def download(self, asset_id: str, lod: int | None = None) -> str:
        path = self._path("download", asset_id=asset_id)
        return path if lod is None else f"{path}?lod={lod}"

    def thumbnail(self, asset_id: str) -> str:
        return self._path("thumbnail", asset_id=asset_id)

    def job(self, job_id: str) -> str:
        return self._path("get_job", job_id=job_id)

    def job_feed(self, job_id: str) -> str:
        return f"{self._path('progress')}?job_id={job_id}"

    def engine_bundle(self, asset_id: str, engine: str) -> str:
        return self._path("engine_zip", asset_id=asset_id, engine=engine)

    def _path(self, route: str, **params: str) -> str:
        key = (route, *params)
        path = self._templates.get(key)
        if path is None:
            marks = {name: f"__{name}__" for name in params}
            path = self._templates[key] = self._request.app.url_path_for(route, **marks)
        for name, value in params.items():
            path = path.replace(f"__{name}__", value)
        return self.root + path
