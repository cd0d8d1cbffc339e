"""Claims of active jobs: which queue holds a job, until when, and the token that fences it.

A queue works only on jobs it holds by a claim in the database: ``claimed_by`` (the queue),
``lease_until`` (extended while the queue, and the worker running the job, are alive) and
``claim``, a counter that every new claim counts up: a queue adopting the job, and each run of
one of its stages by a worker (preprocessing, generation, the CPU stage and export). Every
write about a job names the claim it was made under, and the store refuses one whose claim is
no longer current (`Store.update_job`, `Store.finish_job`): a queue cut off behind a partition,
or a worker whose job went to another, changes nothing.

A claim is won by a conditional UPDATE, which exactly one claimant wins: PostgreSQL re-checks
the condition on the row it waited for (READ COMMITTED; adopting skips rows another claimant
has locked: ``FOR UPDATE SKIP LOCKED``), SQLite has one writer at a time.
A queue adopts a job only when nobody holds it (just submitted) or its lease has expired.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from sweedle_core.db.models import GenerationJob, utcnow
from sweedle_core.jobs.states import ACTIVE

_ACTIVE = [s.value for s in ACTIVE]
BATCH = 500  # ids per renewal statement


@dataclass(frozen=True)
class Renewal:
    """What a lease renewal found: the jobs still held, and those a user asked (through
    another queue) to cancel."""

    held: set[str] = field(default_factory=set)
    cancel_requested: set[str] = field(default_factory=set)


class JobClaims:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self.sessions = sessions

    async def adopt(
        self,
        holder: str,
        lease_s: float,
        *,
        job_id: str | None = None,
        keep: Collection[str] = (),
        unclaimed_for_s: float = 0.0,
    ) -> Sequence[GenerationJob]:
        """Claim for ``holder`` the active jobs whose lease expired, or that nobody holds and
        were created ``unclaimed_for_s`` ago or more (the queue its ingress submits it to has
        that long to claim it), their claim counted up; and those held by a queue in ``keep``
        (this queue before a restart, one it replaces: their claims stay, so a worker still
        running one goes on with it). Only ``job_id`` if given. Returns the rows claimed,
        oldest first."""
        now = utcnow()
        lease = now + timedelta(seconds=lease_s)
        unclaimed_since = now - timedelta(seconds=unclaimed_for_s)
        ids: list[str] = []
        async with self.sessions.begin() as session:
            if keep:
                kept = await session.execute(
                    self._active(job_id, GenerationJob.claimed_by.in_(list(keep)))
                    .values(claimed_by=holder, lease_until=lease)
                    .returning(GenerationJob.id)
                )
                ids += kept.scalars().all()
            free = or_(
                and_(
                    GenerationJob.claimed_by.is_(None),
                    GenerationJob.created_at <= unclaimed_since,
                ),
                GenerationJob.lease_until < now,
            )
            # PostgreSQL: rows another claimant is taking are skipped, not waited for, so two
            # queues adopting at once never deadlock (SQLite has one writer and no FOR UPDATE).
            claimable = select(GenerationJob.id).where(GenerationJob.status.in_(_ACTIVE), free)
            if job_id is not None:
                claimable = claimable.where(GenerationJob.id == job_id)
            claimable = claimable.order_by(GenerationJob.id).with_for_update(skip_locked=True)
            taken = await session.execute(
                self._active(job_id, free, GenerationJob.id.in_(claimable.scalar_subquery()))
                .values(claimed_by=holder, lease_until=lease, claim=GenerationJob.claim + 1)
                .returning(GenerationJob.id)
            )
            ids += taken.scalars().all()
        if not ids:
            return []
        async with self.sessions() as session:
            rows = await session.scalars(
                select(GenerationJob)
                .where(GenerationJob.id.in_(ids))
                .order_by(GenerationJob.created_at)
            )
            return rows.all()

    async def take(self, job_id: str, claim: int, lease_s: float) -> int | None:
        """A new claim on a job held under ``claim`` (a worker's run of a stage): the new
        token, or None when ``claim`` is no longer current (the job went to another)."""
        async with self.sessions.begin() as session:
            result = await session.execute(
                self._active(job_id, GenerationJob.claim == claim)
                .values(claim=claim + 1, lease_until=utcnow() + timedelta(seconds=lease_s))
                .returning(GenerationJob.claim)
            )
            return result.scalar_one_or_none()

    async def renew(self, holder: str, job_ids: Collection[str], lease_s: float) -> Renewal:
        """Extend ``holder``'s leases on ``job_ids``; says which it still holds, and which of
        those a user asked to cancel."""
        renewal = Renewal()
        lease = utcnow() + timedelta(seconds=lease_s)
        ids = list(job_ids)
        for start in range(0, len(ids), BATCH):
            async with self.sessions.begin() as session:
                result = await session.execute(
                    update(GenerationJob)
                    .where(
                        GenerationJob.id.in_(ids[start : start + BATCH]),
                        GenerationJob.claimed_by == holder,
                        GenerationJob.status.in_(_ACTIVE),
                    )
                    .values(lease_until=lease)
                    .returning(GenerationJob.id, GenerationJob.cancel_requested)
                    .execution_options(synchronize_session=False)
                )
                for job_id, cancel in result.all():
                    renewal.held.add(job_id)
                    if cancel:
                        renewal.cancel_requested.add(job_id)
        return renewal

    async def ask_to_cancel(self, job_id: str) -> bool:
        """Record a user's cancel of an active job this queue does not hold: its holder reads
        it at its next renewal. False when the job is no longer active."""
        async with self.sessions.begin() as session:
            result = await session.execute(
                self._active(job_id).values(cancel_requested=True, message="cancelling")
            )
        return bool(result.rowcount)

    @staticmethod
    def _active(job_id: str | None, *conditions: ColumnElement[bool]) -> Any:
        """An UPDATE of the active jobs (``job_id`` only, if given) that meet ``conditions``."""
        statement = update(GenerationJob).where(GenerationJob.status.in_(_ACTIVE), *conditions)
        if job_id is not None:
            statement = statement.where(GenerationJob.id == job_id)
        return statement.execution_options(synchronize_session=False)
