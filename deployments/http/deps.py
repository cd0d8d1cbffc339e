"""Typed dependencies declared once: the services, and the asset or job a route is about,
looked up as the caller may see it (another key's asset is not found)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request

from deployments.http.auth import CallerDep, services_of
from deployments.http.links import RequestLinks
from deployments.http.services import Services
from sweedle_core.db.models import Asset, GenerationJob
from sweedle_core.db.paging import CURSOR_MAX
from sweedle_core.errors import AssetNotReady

# Dependencies are async functions: FastAPI runs a plain function (or a class) in a worker
# thread, a hop that cost more than the rest of a library page's Python.


async def _services(request: Request) -> Services:
    return services_of(request)


async def _links(request: Request) -> RequestLinks:
    return RequestLinks(request)


ServicesDep = Annotated[Services, Depends(_services)]
Id = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="a 32-character hex id")]


async def visible_asset(asset_id: Id, caller: CallerDep, services: ServicesDep) -> Asset:
    return await services.store.library.get(asset_id, caller.sees)


async def completed_asset(asset: Annotated[Asset, Depends(visible_asset)]) -> Asset:
    if asset.status != "completed":
        raise AssetNotReady(f"asset {asset.id} is {asset.status}: exports need a completed one")
    return asset


async def visible_job(job_id: Id, caller: CallerDep, services: ServicesDep) -> GenerationJob:
    return await services.store.library.get_job(job_id, caller.sees)


AssetDep = Annotated[Asset, Depends(visible_asset)]
CompletedAssetDep = Annotated[Asset, Depends(completed_asset)]
JobDep = Annotated[GenerationJob, Depends(visible_job)]
LinksDep = Annotated[RequestLinks, Depends(_links)]
# A list's next page: the next_cursor of the page before (instead of page).
CursorQuery = Annotated[
    str | None,
    Query(max_length=CURSOR_MAX, description="the last page's next_cursor, instead of page"),
]
