"""Stored files as HTTP responses: a local file as it is, an object streamed from the store
(never whole in memory), or a redirect to a presigned URL where the settings ask for one."""

from __future__ import annotations

import asyncio
from typing import Annotated
from urllib.parse import quote

from fastapi import Query
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse

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
    },
    303: {"description": "STORAGE_PRESIGNED_DOWNLOADS: the file at a presigned URL"},
}


# `?redirect=false`: the bytes come through this server even with STORAGE_PRESIGNED_DOWNLOADS.
# Studio asks so: its Content-Security-Policy keeps it on this origin, and a followed redirect
# would carry its key's header to the store's host.
MayRedirect = Annotated[
    bool,
    Query(
        alias="redirect",
        description="false: never a redirect to a presigned URL, the bytes come from here",
    ),
]


def download_name(name: str) -> str:
    """An asset's name as the stem of the files it downloads as (Content-Disposition): letters
    and digits of any script, spaces, ``-`` and ``_`` kept, any other character ``_``, at most
    80 characters; ``asset`` when nothing is left. Names inside an engine project follow the
    stricter `engine_exporter.engine_asset_name`."""
    cleaned = "".join(c if c.isalnum() or c in "-_ " else "_" for c in name).strip()
    return cleaned[:80] or "asset"


async def send_stored(
    services: Services, stored: StoredFile, missing: str = "", redirect: bool = True
) -> Response:
    """``stored`` as the answer; `FileMissing` (``missing``, if given) when it is not there.
    ``redirect`` false: streamed even where the settings ask for presigned URLs."""
    storage, key = services.storage, stored.path
    filename = stored.filename or None
    try:
        if not key:
            raise FileMissing(f"{stored.filename} is not ready")
        path = await asyncio.to_thread(storage.served_path, key)
        if path is not None:
            return FileResponse(path, media_type=stored.media_type, filename=filename)
        settings = services.settings
        presign = redirect and settings.storage_presigned_downloads
        if presign and await asyncio.to_thread(storage.exists, key):
            seconds = settings.storage_presign_seconds
            url = await asyncio.to_thread(storage.presigned_url, key, seconds)
            if url is not None:
                # 303: the client fetches the URL with a GET, whatever the method it used here
                # (POST /thumbnail); an X-API-Key header may follow it to the store's host.
                return RedirectResponse(url, status_code=303)
        size, chunks = await storage.open_stream(key)
    except FileMissing:
        if missing:
            raise FileMissing(missing) from None
        raise
    headers = {"Content-Length": str(size)}
    if filename:
        headers["Content-Disposition"] = _attachment(filename)
    return StreamingResponse(chunks, media_type=stored.media_type, headers=headers)


def _attachment(filename: str) -> str:
    """Content-Disposition as Starlette's FileResponse writes it, so both answers agree."""
    quoted = quote(filename)
    if quoted != filename:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{filename}"'
