"""The queue's side of the claims in the database (`sweedle_core/db/claims.py`).

Which jobs the queue may work on: those it adopts (nobody held them, their lease expired, or it
held them before a restart), kept by renewing their leases on every watchdog pass, and passed
on to a new claim for each run of a stage by a worker. Claims go through the queue's ordered
writer, so a write asked for under an old claim lands before the claim moves on. Owned by one
event loop; not thread-safe.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sweedle_core.db.claims import JobClaims, Renewal
from sweedle_core.db.models import GenerationJob
from sweedle_core.jobs.book import JobEntry
from sweedle_core.jobs.writer import JobWriter


class ClaimLost(Exception):
    """The job's claim is no longer this queue's: another holds it, or it ended."""


class QueueHolds:
    def __init__(
        self,
        claims: JobClaims,
        writer: JobWriter,
        holder: str,
        lease_s: float,
        inherited: Collection[str] = (),
    ) -> None:
        """``holder`` names this queue across its restarts; ``inherited``: queues it replaces,
        whose jobs it takes over at once instead of after their leases."""
        self.claims = claims
        self.writer = writer
        self.holder = holder
        self.lease_s = lease_s
        self.inherited = tuple(inherited)

    async def adopt_at_start(self) -> Sequence[GenerationJob]:
        """Every job this queue may take up at its start: its own from before a restart, those
        of the queues it replaces, and those nobody holds (`adopt_free`)."""
        return await self.claims.adopt(
            self.holder,
            self.lease_s,
            keep=(self.holder, *self.inherited),
            unclaimed_for_s=self.lease_s,
        )

    async def adopt_free(self) -> Sequence[GenerationJob]:
        """Jobs whose holder went silent, and those nobody claimed within a lease of their
        creation (a submit lost on the way; sooner, it is on its way to another queue)."""
        return await self.claims.adopt(self.holder, self.lease_s, unclaimed_for_s=self.lease_s)

    async def adopt(self, job_id: str) -> GenerationJob | None:
        """One job (just submitted, or asked about), unless another queue holds it."""
        rows = await self.claims.adopt(
            self.holder, self.lease_s, job_id=job_id, keep=(self.holder,)
        )
        return rows[0] if rows else None

    async def take(self, entry: JobEntry) -> None:
        """A new claim for the next run of the job's stage; raises `ClaimLost`.

        The entry names the new claim at once: a write asked for from now on lands after the
        take in the writer's order, so it must name it."""
        held = entry.claim
        entry.claim = held + 1
        entry.report_seq = 0  # a new run numbers its reports from 1
        try:
            taken = await self.writer.queued(lambda: self.claims.take(entry.id, held, self.lease_s))
        except BaseException:
            entry.claim = held  # not taken: the claim the database holds is still the old one
            raise
        if taken is None:
            raise ClaimLost(entry.id)

    async def renew(self, job_ids: Collection[str]) -> Renewal:
        """Extend the leases of ``job_ids``; says which are still this queue's."""
        ids = list(job_ids)
        return await self.writer.queued(lambda: self.claims.renew(self.holder, ids, self.lease_s))

    async def ask_to_cancel(self, job_id: str) -> bool:
        """A cancel of a job another queue holds, for it to read at its next renewal."""
        return await self.writer.queued(lambda: self.claims.ask_to_cancel(job_id))
