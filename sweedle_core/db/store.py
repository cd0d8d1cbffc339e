"""Every read and write of jobs and assets, as async functions over one session factory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, delete, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sweedle_core.access.limits import waiting_jobs_exceeded
from sweedle_core.db.claims import JobClaims
from sweedle_core.db.engine import (
    DatabaseOptions,
    direct_postgres,
    make_engine,
    make_sessionmaker,
)
from sweedle_core.db.library import AssetLibrary, waiting_in
from sweedle_core.db.models import (
    Asset,
    GenerationJob,
    IdempotencyRecord,
    as_utc,
    new_id,
    utcnow,
)
from sweedle_core.db.removals import Removals, drop_upload_record
from sweedle_core.db.request_counts import RequestCounts
from sweedle_core.db.webhook_deliveries import WebhookDeliveries, new_delivery
from sweedle_core.db.webhook_payload import webhook_payload
from sweedle_core.errors import AssetNotFound
from sweedle_core.idempotency import Idempotency, IdempotencyTaken
from sweedle_core.jobs.states import ACTIVE, TERMINAL, JobStage, JobStatus
from sweedle_core.params import GenerationParams, Priority

if TYPE_CHECKING:
    from sweedle_core.config import Settings

_ACTIVE = [s.value for s in ACTIVE]
_TERMINAL = [s.value for s in TERMINAL]


@dataclass(frozen=True)
class JobFinishOutcome:
    """What `Store.finish_job` did: true when it finished the job; the webhook delivery it
    recorded, if the job has a webhook."""

    finished: bool
    webhook_id: str | None = None

    def __bool__(self) -> bool:
        return self.finished


class Store:
    """The database, seen as Sweedle's jobs and assets."""

    def __init__(self, engine: AsyncEngine, autocommit_reads: bool = False) -> None:
        """``autocommit_reads``: a read of several statements may send each on its own
        (`engine.direct_postgres`)."""
        self.engine = engine
        self.sessions: async_sessionmaker = make_sessionmaker(engine)
        self.library = AssetLibrary(engine, self.sessions, autocommit_reads)
        self.removals = Removals(self.sessions)
        self.claims = JobClaims(self.sessions)
        self.request_counts = RequestCounts(self.sessions, engine.dialect.name)
        self.webhook_deliveries = WebhookDeliveries(self.sessions)

    @classmethod
    def from_url(cls, url: str, options: DatabaseOptions = DatabaseOptions()) -> Store:
        return cls(make_engine(url, options), direct_postgres(url, options))

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """The store at DATABASE_URL, pooled as the DATABASE_* settings say."""
        return cls.from_url(settings.database_url, DatabaseOptions.of(settings))

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
        input_path: str | None,
        input_views: dict[str, str] | None = None,
        asset_id: str | None = None,
        generator: str | None = None,
        prompt: str | None = None,
        owner: str | None = None,
        webhook_url: str | None = None,
        root_path: str = "",
        idempotency: Idempotency | None = None,
        upload_recorded: bool = False,
        max_waiting: int = 0,
    ) -> GenerationJob:
        """One asset and its generation job (and its Idempotency-Key), in one transaction.

        ``max_waiting`` (the owner's waiting-jobs limit; 0: none) is checked in the same
        transaction, after the job is written and with the owner's other submissions held
        back, so racing submissions cannot all pass it: `RateLimited` when it would be passed.

        ``upload_recorded``: the upload's record (`Removals.expect_upload`) is dropped with it;
        `UploadSwept` when a sweep claimed it first.

        With a ``prompt`` the asset is a text-to-3d one: its input image is painted later.
        Raises `IdempotencyTaken` when another request stored the same key first.
        """
        asset = Asset(
            id=asset_id or new_id(),
            name=name,
            source_type="image" if prompt is None else "text",
            prompt=prompt,
            original_filename=original_filename,
            input_path=input_path,
            input_views=input_views or None,
            model_format=params.output_format,
            generator=generator,
            generation_params=params.model_dump(mode="json"),
            owner=owner,
        )
        job = GenerationJob(
            id=new_id(),
            asset=asset,
            priority=priority.value,
            params=params.model_dump(mode="json"),
            status=JobStatus.PENDING.value,
            stage=JobStage.QUEUED.value,
            owner=owner,
            webhook_url=webhook_url,
            root_path=root_path or None,
        )
        try:
            async with self.sessions.begin() as session:
                if max_waiting > 0:  # the owner's waiting jobs are counted (None: no key's)
                    await _hold_owner(session, owner)
                session.add_all([asset, job])
                if upload_recorded:  # the upload is the asset's now, unless a sweep took it
                    await drop_upload_record(session, asset.id)
                if max_waiting > 0:
                    await session.flush()  # SQLite: the write takes the one writer's lock
                    waiting_jobs_exceeded(await waiting_in(session, owner) - 1, max_waiting)
                if idempotency is not None:
                    await session.flush()  # the job row first: the key refers to it
                    session.add(
                        IdempotencyRecord(
                            id=idempotency.record_id,
                            owner=owner,
                            request_hash=idempotency.request_hash,
                            job_id=job.id,
                        )
                    )
        except IntegrityError as exc:
            if idempotency is None:
                raise
            raise IdempotencyTaken(idempotency.record_id) from exc
        return job

    async def idempotent_job(
        self, record_id: str, max_age: timedelta
    ) -> tuple[str, GenerationJob] | None:
        """The request hash and job stored under an Idempotency-Key, if it is younger than
        ``max_age`` (an older one is forgotten here)."""
        async with self.sessions.begin() as session:
            record = await session.get(IdempotencyRecord, record_id)
            if record is None:
                return None
            if as_utc(record.created_at) < utcnow() - max_age:
                await session.execute(
                    delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id)
                )
                return None
            job = await session.get(GenerationJob, record.job_id)
            return (record.request_hash, job) if job is not None else None

    # --- jobs ---------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> GenerationJob:
        """Any owner's job (the queue's view); the API reads through `library`."""
        return await self.library.get_job(job_id, None)

    async def update_job(self, job_id: str, claim: int, **fields: Any) -> bool:
        """Write fields of an active job held under ``claim``; False when the job is finished
        (or gone) or ``claim`` is no longer current: a late or stale report changes nothing."""
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(GenerationJob)
                .where(*_held(job_id, claim))
                .values(updated_at=utcnow(), **fields)
            )
        return bool(result.rowcount)

    async def finish_job(
        self,
        job_id: str,
        claim: int,
        status: JobStatus,
        job_fields: dict[str, Any],
        asset_fields: dict[str, Any],
    ) -> JobFinishOutcome:
        """Move an active job held under ``claim`` and its asset to a final state, once (false
        if it already was, or ``claim`` is no longer current).

        A job with a webhook gets its delivery row in the same transaction, so the end of a job
        is never recorded without the announcement of it.
        """
        now = utcnow()
        async with self.sessions.begin() as session:
            job = await session.get(GenerationJob, job_id)
            if job is None or job.status in _TERMINAL:
                return JobFinishOutcome(False)
            result = await session.execute(
                update(GenerationJob)
                .where(*_held(job_id, claim))
                .values(status=status.value, completed_at=now, updated_at=now, **job_fields)
            )
            if not result.rowcount:
                return JobFinishOutcome(False)
            # The asset says how its background was removed, as the job that made it does.
            recorded = {"background_method": job.background_method, **asset_fields}
            await session.execute(
                update(Asset)
                .where(Asset.id == job.asset_id)
                .values(status=status.value, updated_at=now, **recorded)
            )
            if not job.webhook_url:
                return JobFinishOutcome(True)
            await session.refresh(job)
            await session.refresh(job.asset)
            delivery_id = new_id()
            payload = webhook_payload(status.value, job, job.asset, delivery_id)
            session.add(new_delivery(delivery_id, job, payload))
        return JobFinishOutcome(True, delivery_id)

    # --- assets -------------------------------------------------------------------------

    async def get_asset(self, asset_id: str) -> Asset:
        """Any owner's asset (the queue's view); the API reads through `library`."""
        return await self.library.get(asset_id, None)

    async def update_asset(self, asset_id: str, **fields: Any) -> None:
        """Write fields of an asset (e.g. a rebuilt LOD chain)."""
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(Asset).where(Asset.id == asset_id).values(updated_at=utcnow(), **fields)
            )
        if not result.rowcount:
            raise AssetNotFound(f"no asset with id {asset_id!r}")


def _held(job_id: str, claim: int) -> tuple[ColumnElement[bool], ...]:
    """The job, while it is active and held under ``claim`` (the fence of every write)."""
    return (
        GenerationJob.id == job_id,
        GenerationJob.status.in_(_ACTIVE),
        GenerationJob.claim == claim,
    )


async def _hold_owner(session: AsyncSession, owner: str | None) -> None:
    """Hold back ``owner``'s other submissions until this transaction ends (PostgreSQL: a
    transaction-scoped advisory lock on the owner's name; SQLite has one writer at a time,
    which the transaction becomes with its first write)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:owner))"), {"owner": owner or ""}
        )
