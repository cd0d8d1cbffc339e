"""Where the API's own resources are, for the links its answers carry.

Every link is a path under ``root``, the path the app is served at (a Serve ``route_prefix``;
empty at the server's root), so a client or the Studio follows it as given. The links are paths,
not absolute URLs: the service does not know the address it is reached by.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Links:
    root: str = ""

    def download(self, asset_id: str, lod: int | None = None) -> str:
        path = f"{self.root}/api/assets/{asset_id}/download"
        return path if lod is None else f"{path}?lod={lod}"

    def thumbnail(self, asset_id: str) -> str:
        return f"{self.root}/api/assets/{asset_id}/thumbnail"

    def job(self, job_id: str) -> str:
        return f"{self.root}/api/generation/jobs/{job_id}"

    def job_feed(self, job_id: str) -> str:
        return f"{self.root}/ws/progress?job_id={job_id}"

    def engine_bundle(self, asset_id: str, engine: str) -> str:
        return f"{self.root}/api/export/{asset_id}/engine/{engine}"
