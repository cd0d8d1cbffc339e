"""The workers' side of the job queue: what generator replicas and CPU workers call.

Generators pull their jobs (`claim`), report progress under the job's claim, keep their lease
with heartbeats and hand the job back generated, failed or released; a job whose generator went
silent past its lease goes to another (`requeue_silent`, on every watchdog pass). CPU workers
report the progress of a job's CPU stage. Owned by one event loop; not thread-safe.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sweedle_core.db.models import utcnow
from sweedle_core.jobs.attempts import StageAttempts
from sweedle_core.jobs.book import JobEntry
from sweedle_core.jobs.cpu_stages import CpuStages
from sweedle_core.jobs.holds import ClaimLost
from sweedle_core.jobs.parts import QueueParts
from sweedle_core.jobs.roster import JobRoster
from sweedle_core.jobs.states import JobStage
from sweedle_core.jobs.tickets import GenerateTicket

log = logging.getLogger(__name__)


class WorkerDesk:
    def __init__(
        self, parts: QueueParts, roster: JobRoster, cpu: CpuStages, attempts: StageAttempts
    ) -> None:
        self._parts = parts
        self._attempts = attempts
        self._roster = roster
        self._cpu = cpu

    async def claim(self, worker: str, timeout: float) -> GenerateTicket | None:
        """The first job waiting for a generator, or None after ``timeout`` seconds. The
        ticket carries the job's new claim, which every report about the run names."""
        deadline = time.monotonic() + timeout
        # Idle, unless it is still busy with a job.
        self._parts.generators.seen_done(worker, "", self._parts.book)
        while True:
            entry = await self._parts.gpu.next_job(worker, deadline)
            if entry is None:
                return None
            entry.worker = worker
            entry.stage = JobStage.GENERATING  # held for this worker while the claim is taken
            self._extend_lease(entry)
            try:
                await self._parts.holds.take(entry)
            except ClaimLost:
                self._roster.lose(entry)
                continue
            except BaseException:  # the database is down: the job waits for the next claim
                entry.worker = None
                self._parts.book.move(entry, JobStage.WAITING_FOR_GPU)
                raise
            break
        entry.attempts += 1
        entry.timings["claimed_at"] = time.time()
        self._parts.generators.seen(worker, state="generating", job_id=entry.id)
        entry.stage = JobStage.WAITING_FOR_GPU  # so `enter` times the wait and announces it
        await self._parts.ledger.enter(
            entry,
            JobStage.GENERATING,
            fraction=0.0,
            message="generating",
            worker=worker,
            attempts=entry.attempts,
            started_at=utcnow(),
        )
        return GenerateTicket.for_job(entry)

    async def report_progress(
        self, job_id: str, worker: str, claim: int, fraction: float, message: str, seq: int = 0
    ) -> bool:
        """Record a generator's progress; False tells it to stop (cancelled, or the run's
        ``claim`` is no longer current: the job went to another).

        ``seq`` numbers a generation's reports: an async actor may run calls out of the order
        they were sent, and a report older than one already shown is dropped, so progress never
        goes backwards.
        """
        entry = self._owned(job_id, worker, claim)
        if entry is None or entry.cancel_requested:
            return False
        self._extend_lease(entry)
        # The stage goes with it: a run a restarted queue put back in line is generating again.
        stage = {"stage": entry.stage.value, "status": entry.stage.status.value}
        self._show_report(entry, seq, fraction, message, **stage)
        return True

    def stage_progress(
        self, job_id: str, claim: int, fraction: float, message: str, seq: int = 0
    ) -> bool:
        """Progress of a job's CPU stage (painting a text-to-3d image, the export chain) run
        under ``claim``; False: stop (cancelled, the job is no longer in such a stage, or the
        run's claim is no longer current). ``seq``: as in `report_progress`."""
        entry = self._parts.book.get(job_id)
        if (
            entry is None
            or entry.claim != claim
            or entry.cancel_requested
            or entry.stage not in (JobStage.PREPROCESSING, JobStage.EXPORTING)
        ):
            return False
        self._show_report(entry, seq, fraction, message)
        return True

    def _show_report(
        self, entry: JobEntry, seq: int, fraction: float, message: str, **fields: Any
    ) -> None:
        """A worker's report of its run, in the entry, the database (coalesced) and the feed;
        dropped if it overtook a later one (``seq``)."""
        if seq and seq <= entry.report_seq:
            return
        entry.report_seq = seq
        entry.progress = entry.progress_at(entry.stage, fraction)
        entry.message = message
        self._parts.writer.write_progress(
            entry.id, entry.claim, progress=entry.progress, message=message, **fields
        )
        self._parts.ledger.publish("progress", entry)

    def heartbeat(self, job_id: str, worker: str, claim: int) -> bool:
        """A generator still runs the job (extends its lease); False: stop."""
        entry = self._owned(job_id, worker, claim)
        if entry is None:
            return False
        self._extend_lease(entry)
        self._parts.generators.seen(worker, state="generating", job_id=job_id)
        return not entry.cancel_requested

    async def generated(
        self, job_id: str, worker: str, claim: int, seconds: float, gpu_s: float | None = None
    ) -> None:
        """A generator stored the shape (its GPU stage's hand-off) or its painting: the job
        waits for the CPU pool, which makes the mesh and its exports; the generator is free."""
        entry = self._owned(job_id, worker, claim)
        self._parts.generators.seen_done(worker, job_id, self._parts.book)
        if entry is None:
            return
        gpu_s = gpu_s or 0.0
        if entry.paint_visits:  # the second visit: the GPU's time is the shape's and the paint's
            entry.timings["paint_s"] = round(seconds, 4)
            gpu_s += entry.timings.get("gpu_s", 0.0)
        else:
            entry.timings["generate_s"] = round(seconds, 4)
        entry.timings["gpu_s"] = round(gpu_s, 4)
        entry.timings["generated_at"] = time.time()
        if entry.cancel_requested:
            await self._parts.ledger.cancelled(entry)
            return
        await self._parts.ledger.enter(
            entry, JobStage.EXPORTING, fraction=0.0, message="waiting for a CPU worker"
        )
        self._cpu.queue_export(entry)

    async def generation_failed(
        self, job_id: str, worker: str, claim: int, error: str, cancelled: bool
    ) -> None:
        entry = self._owned(job_id, worker, claim)
        self._parts.generators.seen_done(worker, job_id, self._parts.book)
        if entry is None:
            return
        if cancelled or entry.cancel_requested:
            await self._parts.ledger.cancelled(entry)
        else:
            await self._parts.ledger.failed(entry, error)

    async def release(self, job_id: str, worker: str, claim: int) -> None:
        """A generator that is shutting down gives its job back: it waits for the next one."""
        entry = self._owned(job_id, worker, claim)
        if entry is not None:
            await self._parts.gpu.requeue(entry, "requeued: its generator stopped")

    def _extend_lease(self, entry: JobEntry) -> None:
        entry.lease_until = time.monotonic() + self._parts.settings.lease_s

    def _owned(self, job_id: str, worker: str, claim: int) -> JobEntry | None:
        """The job if ``worker`` may go on with its run under ``claim``; adopts a run that a
        restarted queue put back in line (the claim survived the restart: it is the run's)."""
        entry = self._parts.book.get(job_id)
        if entry is None or entry.claim != claim:
            return None
        if entry.stage is JobStage.WAITING_FOR_GPU and entry.worker in (None, worker):
            # The queue restarted while this generator ran the job: keep it where it is.
            entry.worker = worker
            entry.stage = JobStage.GENERATING
            self._extend_lease(entry)
        if entry.stage is not JobStage.GENERATING or entry.worker != worker:
            return None
        return entry

    async def requeue_silent(self, now: float) -> None:
        """Put back the jobs whose generator went silent (its lease ran out): another takes
        them, up to ``stage_attempts`` runs; a cancelled one ends."""
        for entry in self._parts.book.entries():
            if self._parts.book.get(entry.id) is not entry:
                continue  # finished while an earlier job was being requeued
            if entry.stage is not JobStage.GENERATING or entry.lease_until >= now:
                continue
            if entry.cancel_requested:
                # Nobody runs it any more: the cancel is done.
                await self._parts.ledger.cancelled(entry)
                continue
            attempts = self._parts.settings.stage_attempts
            attempt = self._attempts.next_attempt(entry, JobStage.GENERATING)
            if attempt is None:
                await self._parts.ledger.failed(
                    entry,
                    "generation failed: its generator went silent in each of "
                    f"{attempts} attempts (a killed replica or a lost node; "
                    "STAGE_MAX_ATTEMPTS)",
                )
                continue
            log.warning("job %s: generator %s went silent; requeued", entry.id, entry.worker)
            await self._parts.gpu.requeue(
                entry,
                f"requeued: its generator went silent; attempt {attempt} of {attempts}",
                retries=dict(entry.retries),
            )
