"""Stored files as HTTP responses."""

from __future__ import annotations

from fastapi.responses import FileResponse

from deployments.http.services import Services
from sweedle_core.errors import FileMissing
from sweedle_core.export.asset_exports import StoredFile
from sweedle_core.export.formats import MEDIA_TYPES

# What the file routes send, for the OpenAPI schema.
FILE_RESPONSES: dict[int | str, dict] = {
    200: {
        "description": "the file",
        "content": {
            t: {"schema": {"type": "string", "format": "binary"}}
            for t in sorted({*MEDIA_TYPES.values(), "application/zip", "image/png"})
        },
    }
}


def safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_ " else "_" for c in name).strip()
    return cleaned[:80] or "asset"


def send_stored(services: Services, stored: StoredFile) -> FileResponse:
    path = stored_path(services, stored.path, f"{stored.path} is missing")
    return FileResponse(path, media_type=stored.media_type, filename=stored.filename)


def stored_path(services: Services, relative: str | None, missing: str):  # type: ignore[no-untyped-def]
    if not relative or not (path := services.storage.path(relative)).is_file():
        raise FileMissing(missing)
    return path
