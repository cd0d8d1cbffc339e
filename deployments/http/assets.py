"""The asset library: list, search, edit, tag, delete, download."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse

from deployments.http.auth import CallerDep
from deployments.http.deps import (
    AssetDep,
    CompletedAssetDep,
    CursorQuery,
    LinksDep,
    ServicesDep,
)
from deployments.http.files import FILE_RESPONSES, MayRedirect, download_name, send_stored
from sweedle_core.asset_removal import remove_asset
from sweedle_core.db.library import AssetQuery, SortBy, SortOrder
from sweedle_core.export.asset_exports import StoredFile
from sweedle_core.params import ExportFormat
from sweedle_core.schemas import (
    MAX_TAGS,
    AssetPage,
    AssetRead,
    AssetUpdate,
    TagCount,
    TagCreate,
)

router = APIRouter(prefix="/api/assets", tags=["assets"])
# How long a DELETE waits for the asset's running job to stop (a generation step or an export).
STOP_WAIT_S = 30.0


@router.get("", response_model=AssetPage)
async def list_assets(
    services: ServicesDep,
    caller: CallerDep,
    links: LinksDep,
    page: Annotated[int | None, Query(ge=1, le=100_000, description="default 1")] = None,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    search: Annotated[
        str | None, Query(max_length=200, description="in names and tags, matched literally")
    ] = None,
    source_type: Annotated[str | None, Query(pattern="^(image|text)$")] = None,
    status: Annotated[
        str | None, Query(pattern="^(pending|processing|completed|failed|cancelled)$")
    ] = None,
    tags: Annotated[
        list[str],
        Query(max_length=MAX_TAGS, description="assets carrying every one of these (repeat it)"),
    ] = [],  # noqa: B006
    sort_by: SortBy = "created",
    sort_order: SortOrder = "desc",
    owner: Annotated[
        str | None, Query(max_length=64, description="one key's assets (an admin key's filter)")
    ] = None,
    cursor: CursorQuery = None,
) -> AssetPage:
    """A page of the library: ``page`` to jump, ``cursor`` (the last page's ``next_cursor``)
    to go on from any depth at the cost of the first page."""
    query = AssetQuery(
        page=page,
        page_size=page_size,
        search=search,
        source_type=source_type,
        status=status,
        tags=tags,
        sort_by=sort_by,
        sort_order=sort_order,
        owner=owner,
        cursor=cursor,
    )
    return AssetPage.of(await services.store.library.find(query, caller.sees), links)


@router.get("/tags", response_model=list[TagCount])
async def list_tags(services: ServicesDep, caller: CallerDep) -> list[TagCount]:
    """Every tag, with how many of the caller's assets carry it."""
    counts = await services.store.library.tag_counts(caller.sees)
    return [TagCount(name=name, count=count) for name, count in counts]


@router.post(
    "/tags",
    status_code=201,
    response_model=TagCount,
    responses={200: {"model": TagCount, "description": "the tag existed already"}},
)
async def create_tag(
    request: TagCreate, services: ServicesDep, caller: CallerDep, response: Response
) -> TagCount:
    """Create a tag (normalised: trimmed, lower case, spaces as dashes); 200 if it existed."""
    name, created = await services.store.library.create_tag(request.name)
    if not created:
        response.status_code = 200
    counts = dict(await services.store.library.tag_counts(caller.sees))
    return TagCount(name=name, count=counts.get(name, 0))


@router.get("/{asset_id}", response_model=AssetRead)
async def get_asset(asset: AssetDep, links: LinksDep) -> AssetRead:
    return AssetRead.of(asset, links)


@router.patch("/{asset_id}", response_model=AssetRead)
async def edit_asset(
    asset: AssetDep, update: AssetUpdate, services: ServicesDep, caller: CallerDep, links: LinksDep
) -> AssetRead:
    """Rename, retag (the whole set) or replace the free-form metadata; fields left out stay."""
    edited = await services.store.library.edit(
        asset.id, caller.sees, name=update.name, tags=update.tags, metadata=update.metadata
    )
    return AssetRead.of(edited, links)


@router.delete("/{asset_id}", status_code=204, response_class=Response)
async def delete_asset(asset: AssetDep, services: ServicesDep) -> Response:
    """Delete the asset, its jobs and every file of it; a running job is cancelled first."""

    async def stop_job(job_id: str) -> bool:
        return await services.queue.cancel_and_wait.remote(job_id, STOP_WAIT_S)

    await remove_asset(asset, services.store, services.storage, stop_job)
    return Response(status_code=204)


@router.get("/{asset_id}/download", response_class=FileResponse, responses=FILE_RESPONSES)
async def download(
    asset: CompletedAssetDep,
    services: ServicesDep,
    format: Annotated[ExportFormat | None, Query(description="default: the job's")] = None,
    lod: Annotated[int, Query(ge=0, le=7, description="0 is the full mesh")] = 0,
    draco: Annotated[bool, Query(description="Draco-compressed GLB")] = False,
    redirect: MayRedirect = True,
) -> Response:
    """The asset's model in a format, at a LOD; multi-file formats come as a zip."""
    stored = await services.exports.call(
        "download",
        asset.id,
        download_name(asset.name),
        format or asset.model_format,
        lod,
        draco,
        len(asset.lods or []),
    )
    return await send_stored(services, stored, redirect=redirect)


@router.get("/{asset_id}/thumbnail", response_class=FileResponse, responses=FILE_RESPONSES)
async def thumbnail(
    asset: AssetDep, services: ServicesDep, redirect: MayRedirect = True
) -> Response:
    stored = StoredFile(asset.thumbnail_path or "", "image/png", "")
    missing = f"asset {asset.id} has no thumbnail yet"
    return await send_stored(services, stored, missing, redirect)
