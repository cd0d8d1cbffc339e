"""Exports of a completed asset: LOD chains, engine bundles, validation, thumbnails."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from deployments.http.auth import CallerDep
from deployments.http.deps import CompletedAssetDep, LinksDep, ServicesDep
from deployments.http.files import FILE_RESPONSES, MayRedirect, download_name, send_stored
from sweedle_core.schemas import (
    AssetRead,
    EngineExportRead,
    EngineRequest,
    LodRead,
    LodRequest,
    ThumbnailRequest,
)

router = APIRouter(prefix="/api/export", tags=["exports"])
Engine = Literal["unity", "unreal", "godot"]


@router.post("/{asset_id}/lods", response_model=list[LodRead])
async def make_lods(
    asset: CompletedAssetDep, request: LodRequest, services: ServicesDep, links: LinksDep
) -> list[LodRead]:
    """The asset's LOD chain at these levels: reused when it has them, else rebuilt (progress
    comes as export_progress events)."""
    built = asset.lods or []
    lods = await services.exports.call_reported(
        "lods", asset.id, request.levels, built, asset.owner
    )
    await services.store.update_asset(asset.id, lods=lods)
    return AssetRead.of(await services.store.get_asset(asset.id), links).lods or []


@router.post("/{asset_id}/engine", response_model=EngineExportRead)
async def engine_bundle(
    asset: CompletedAssetDep,
    request: EngineRequest,
    caller: CallerDep,
    services: ServicesDep,
    links: LinksDep,
) -> EngineExportRead:
    """A Unity, Unreal or Godot bundle: kept as a zip, and written into `project_path`
    (under the key's export roots) when one is given."""
    result = await services.exports.call_reported(
        "engine_bundle",
        asset.id,
        download_name(asset.name),
        request.engine,
        len(asset.lods or []),
        request.project_path,
        caller.export_roots,
        asset.owner,
    )
    return EngineExportRead(**result, download_url=links.engine_bundle(asset.id, request.engine))


@router.get("/{asset_id}/engine/{engine}", response_class=FileResponse, responses=FILE_RESPONSES)
async def engine_zip(
    asset: CompletedAssetDep, engine: Engine, services: ServicesDep, redirect: MayRedirect = True
) -> Response:
    stored = await services.exports.call("bundle_file", asset.id, download_name(asset.name), engine)
    return await send_stored(services, stored, redirect=redirect)


@router.get("/{asset_id}/validate", response_model=dict[str, Any])
async def validate(asset: CompletedAssetDep, services: ServicesDep) -> dict[str, Any]:
    """The mesh's validation report: counts, bounds, watertightness, manifold edges,
    components, degenerate and duplicate faces, winding, normals, problems."""
    return await services.exports.call("validate", asset.id)


@router.post("/{asset_id}/thumbnail", response_class=FileResponse, responses=FILE_RESPONSES)
async def render_thumbnail(
    asset: CompletedAssetDep,
    request: ThumbnailRequest,
    services: ServicesDep,
    redirect: MayRedirect = True,
) -> Response:
    """A thumbnail of the asset at another size (PNG)."""
    stored = await services.exports.call("thumbnail", asset.id, request.size)
    return await send_stored(services, stored, redirect=redirect)
