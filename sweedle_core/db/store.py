"""Every read and write of jobs and assets, as async functions over one session factory."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from sweedle_core.db.engine import make_engine, make_sessionmaker
from sweedle_core.db.models import Asset, GenerationJob, new_id, utcnow
from sweedle_core.errors import AssetNotFound, JobNotFound
from sweedle_core.jobs.states import ACTIVE, TERMINAL, JobStage, JobStatus
from sweedle_core.params import GenerationParams, Priority

_ACTIVE = [s.value for s in ACTIVE]
_TERMINAL = [s.value for s in TERMINAL]


def as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back naive; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class Store:
    """The database, seen as Sweedle's jobs and assets."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions: async_sessionmaker = make_sessionmaker(engine)

    @classmethod
    def from_url(cls, url: str) -> Store:
        return cls(make_engine(url))

    async def close(self) -> None:
        await self.engine.dispose()

    # --- creation -----------------------------------------------------------------------

    async def create_job(
        self,
        *,
        name: str,
        params: GenerationParams,
        priority: Priority,
        original_filename: str | None,
        input_path: str,
        asset_id: str | None = None,
        generator: str | None = None,
        prompt: str | None = None,
    ) -> GenerationJob:
        """One asset and its generation job, written in one transaction.

        With a ``prompt`` the asset is a text-to-3d one: its input image is painted later.
        """
        asset = Asset(
            id=asset_id or new_id(),
            name=name,
            source_type="image" if prompt is None else "text",
            prompt=prompt,
            original_filename=original_filename,
            input_path=input_path,
            model_format=params.output_format,
            generator=generator,
            generation_params=params.model_dump(),
        )
        job = GenerationJob(
            id=new_id(),
            asset=asset,
            priority=priority.value,
            params=params.model_dump(),
            status=JobStatus.PENDING.value,
            stage=JobStage.QUEUED.value,
        )
        async with self.sessions.begin() as session:
            session.add_all([asset, job])
        return job

    # --- jobs ---------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> GenerationJob:
        async with self.sessions() as session:
            job = await session.get(GenerationJob, job_id)
        if job is None:
            raise JobNotFound(f"no generation job with id {job_id!r}")
        return job

    async def active_jobs(self) -> Sequence[GenerationJob]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(GenerationJob)
                .where(GenerationJob.status.in_(_ACTIVE))
                .order_by(GenerationJob.created_at)
            )
            return rows.all()

    async def update_job(self, job_id: str, **fields: Any) -> bool:
        """Write fields of an active job; False when the job is already finished (or gone).

        Guarded on the status, so a late or repeated report never rewrites a finished job.
        """
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(GenerationJob)
                .where(GenerationJob.id == job_id, GenerationJob.status.in_(_ACTIVE))
                .values(updated_at=utcnow(), **fields)
            )
        return bool(result.rowcount)

    async def finish_job(
        self,
        job_id: str,
        status: JobStatus,
        job_fields: dict[str, Any],
        asset_fields: dict[str, Any],
    ) -> bool:
        """Move an active job and its asset to a final state, once: False if it already was."""
        now = utcnow()
        async with self.sessions.begin() as session:
            job = await session.get(GenerationJob, job_id)
            if job is None or job.status in _TERMINAL:
                return False
            result = await session.execute(
                update(GenerationJob)
                .where(GenerationJob.id == job_id, GenerationJob.status.in_(_ACTIVE))
                .values(status=status.value, completed_at=now, updated_at=now, **job_fields)
            )
            if not result.rowcount:
                return False
            await session.execute(
                update(Asset)
                .where(Asset.id == job.asset_id)
                .values(status=status.value, updated_at=now, **asset_fields)
            )
        return True

    async def list_jobs(self, statuses: Sequence[str] | None = None) -> Sequence[GenerationJob]:
        async with self.sessions() as session:
            query = select(GenerationJob).order_by(GenerationJob.created_at)
            if statuses:
                query = query.where(GenerationJob.status.in_(list(statuses)))
            return (await session.scalars(query)).all()

    # --- assets -------------------------------------------------------------------------

    async def get_asset(self, asset_id: str) -> Asset:
        async with self.sessions() as session:
            asset = await session.get(Asset, asset_id)
        if asset is None:
            raise AssetNotFound(f"no asset with id {asset_id!r}")
        return asset

    async def list_assets(self, page: int, page_size: int) -> tuple[Sequence[Asset], int, int]:
        """One page of assets, newest first, with the total count and the number of pages."""
        async with self.sessions() as session:
            total = await session.scalar(select(func.count()).select_from(Asset)) or 0
            rows = await session.scalars(
                select(Asset)
                .order_by(Asset.created_at.desc(), Asset.id)
                .offset((page - 1) * page_size)
                .limit(page_size)
            )
            return rows.all(), total, max(1, math.ceil(total / page_size))

    async def update_asset(self, asset_id: str, **fields: Any) -> None:
        """Write fields of an asset (e.g. a rebuilt LOD chain)."""
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(Asset).where(Asset.id == asset_id).values(updated_at=utcnow(), **fields)
            )
        if not result.rowcount:
            raise AssetNotFound(f"no asset with id {asset_id!r}")
