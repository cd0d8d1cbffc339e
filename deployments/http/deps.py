"""Typed dependencies declared once: the services, and the asset or job a route is about,
looked up as the caller may see it (another key's asset is not found)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from deployments.http.auth import CallerDep, services_of
from deployments.http.links import RequestLinks
from deployments.http.services import Services
from sweedle_core.db.models import Asset, GenerationJob
from sweedle_core.errors import AssetNotReady

ServicesDep = Annotated[Services, Depends(services_of)]
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
LinksDep = Annotated[RequestLinks, Depends(RequestLinks)]
