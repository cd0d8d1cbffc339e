"""The job coordinator: the priority queue, the dispatcher and the progress broadcaster.

One instance lives in the JobQueue actor. It keeps active jobs in memory (a cache), writes every
state change to the database (the truth) before announcing it, and rebuilds itself from the
database when it starts. CPU work (preprocessing, export) is pushed to worker pools; generators
pull jobs with `claim`, so a generator never waits for CPU work and takes its next job at once.

The coordinator is the queue's one face: it builds the pieces below, takes jobs in and cancels
them, and answers what the queue holds. What happens to a job next is decided in its pieces:
`cpu_stages` runs the CPU stages (with `attempts` after a lost worker), `gpu_line` keeps the jobs
waiting for a generator, `worker_desk` answers the generators' and workers' calls, `roster`
adopts database rows and drops jobs another queue took, and `upkeep` is the watchdog (silent
generators, leases, jobs nobody holds). `ledger` records each change (memory, the ordered
database `writer`, events), `generators` keeps what generator replicas said of themselves,
`files` what jobs keep in the store, `tasks` the background tasks, and `resume`, `views` and
`tickets` turn rows and entries into entries, replies and work orders.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from typing import Any

from sweedle_core.db.store import Store
from sweedle_core.errors import JobFinished
from sweedle_core.jobs.attempts import StageAttempts, describe_error
from sweedle_core.jobs.book import JobBook, JobEntry
from sweedle_core.jobs.cpu_stages import CpuStages
from sweedle_core.jobs.events import Event, EventLog
from sweedle_core.jobs.files import JobFiles
from sweedle_core.jobs.generators import GeneratorRegistry
from sweedle_core.jobs.gpu_line import GpuLine
from sweedle_core.jobs.holds import QueueHolds
from sweedle_core.jobs.lane import PoolLane
from sweedle_core.jobs.ledger import JobLedger, Webhooks
from sweedle_core.jobs.parts import QueueParts
from sweedle_core.jobs.report_order import ReportOrder
from sweedle_core.jobs.roster import JobRoster
from sweedle_core.jobs.states import JobStage, JobStatus
from sweedle_core.jobs.tasks import BackgroundTasks
from sweedle_core.jobs.tickets import GenerateTicket, NoMetrics, QueueMetrics, Workers
from sweedle_core.jobs.upkeep import QueueUpkeep
from sweedle_core.jobs.views import entry_view, row_view
from sweedle_core.jobs.worker_desk import WorkerDesk
from sweedle_core.jobs.writer import PROGRESS_EVERY_S, JobWriter
from sweedle_core.storage import Storage

__all__ = ["JobCoordinator", "describe_error"]

GPU_BOUND = frozenset(
    {JobStage.QUEUED, JobStage.PREPROCESSING, JobStage.WAITING_FOR_GPU, JobStage.GENERATING}
)
OTHER_QUEUE_POLL_S = 0.5  # how often a cancel of another queue's job looks whether it ended


class JobCoordinator:
    def __init__(
        self,
        store: Store,
        storage: Storage,
        workers: Workers,
        *,
        preprocess_concurrency: int = 4,
        export_concurrency: int = 2,
        lease_s: float = 60.0,
        reconcile_s: float = 30.0,
        stage_attempts: int = 3,
        retry_backoff_s: float = 1.0,
        metrics: QueueMetrics | None = None,
        webhooks: Webhooks | None = None,
        holder: str = "queue",
        inherited: Collection[str] = (),
        progress_write_s: float = PROGRESS_EVERY_S,
    ) -> None:
        """``holder`` names this queue in the claims it holds in the database, the same across
        its restarts; ``inherited``: queues it replaces (`QueueHolds`)."""
        self.store = store
        self.storage = storage
        self.workers = workers
        self.events = EventLog()
        self.book = JobBook()
        self.metrics = metrics or NoMetrics()
        # Read by the pieces where they are used (`QueueSettings`).
        self.preprocess_concurrency = preprocess_concurrency
        self.lease_s = lease_s
        self.reconcile_s = reconcile_s
        self.stage_attempts = stage_attempts
        self.retry_backoff_s = retry_backoff_s
        self._background = BackgroundTasks()
        files = JobFiles(store, storage, self._background)
        # Every database write goes through one FIFO writer: the database sees changes in the
        # order they happened, and a caller that need not wait for its write does not.
        self._writer = JobWriter(store, self._refused, progress_write_s)
        # The jobs this queue works on are those it holds a claim on in the database.
        self._holds = QueueHolds(store.claims, self._writer, holder, lease_s, inherited)
        # A job that ends unfinished leaves no hand-off behind (a shape, a mesh waiting for
        # its painter), whichever path ends it: the ledger drops it before the job's end.
        self._ledger = JobLedger(
            self.book,
            self._writer,
            self.events,
            self.metrics,
            self.status,
            webhooks,
            on_unfinished=files.drop_shape,
        )
        self._generators = GeneratorRegistry()
        # Generated jobs wait here for the CPU pool, highest priority first.
        self._exports = PoolLane(export_concurrency)
        self._gpu = GpuLine(self.book, self._ledger, self._generators)
        self._export_runs = ReportOrder()
        parts = QueueParts(
            self,
            self.book,
            self._ledger,
            self._writer,
            self._holds,
            self._generators,
            self._background,
            files,
            self._exports,
            self._gpu,
        )
        attempts = StageAttempts(parts)
        self._cpu = CpuStages(parts, workers, attempts, self._lose)
        self._roster = JobRoster(parts, self._cpu)
        self._desk = WorkerDesk(parts, self._roster, self._cpu, attempts)
        self._upkeep = QueueUpkeep(parts, self._roster, self._cpu, self._desk, self.cancel)

    # --- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Rebuild the queue from the database and start the background loops."""
        self._cpu.hold_exports()  # every resumed job in the lane first, then by priority
        for row in await self._holds.adopt_at_start():
            await self._roster.adopt(row, resume=True)
        self._cpu.release_exports()
        self._cpu.pump()
        self._upkeep.start()
        self._ledger.record_queue()

    async def stop(self) -> None:
        await self._background.stop()
        await self.flush()

    async def flush(self) -> None:
        """Wait until every write asked for so far is in the database."""
        await self._writer.flush()

    @property
    def _tasks(self) -> set[asyncio.Task[Any]]:
        """The background tasks running now (the watchdog among them)."""
        return self._background.running

    # --- submission and cancellation ----------------------------------------------------

    async def submit(self, job_id: str) -> dict[str, Any]:
        """Take a job the ingress has written to the database into the queue."""
        entry = self.book.get(job_id)
        if entry is None:
            await self._settle(job_id)
            row = await self._holds.adopt(job_id)
            if row is None:  # ended, or another queue holds it
                return row_view(await self.store.get_job(job_id))
            entry = await self._roster.adopt(row, resume=False)
            self._cpu.pump()
        return entry_view(entry)

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job: a waiting one ends now, a running one at its next progress step."""
        entry = self.book.get(job_id)
        if entry is None:
            await self._settle(job_id)
            row = await self.store.get_job(job_id)
            if JobStatus(row.status).is_terminal:
                raise JobFinished(f"job {job_id} is already {row.status}; it cannot be cancelled")
            adopted = await self._holds.adopt(job_id)
            if adopted is None:  # another queue holds it: it reads the cancel at its renewal
                if not await self._holds.ask_to_cancel(job_id):
                    raise JobFinished(f"job {job_id} has ended; it cannot be cancelled")
                return row_view(await self.store.get_job(job_id))
            entry = await self._roster.adopt(adopted, resume=False)
        if entry.stage in (JobStage.QUEUED, JobStage.WAITING_FOR_GPU) or entry.id in self._exports:
            self._exports.discard(entry.id)
            await self._ledger.cancelled(entry)
            return entry_view(entry, status=JobStatus.CANCELLED)
        entry.cancel_requested = True
        entry.message = "cancelling"
        # Written, so a queue that restarts before the job stops still cancels it.
        await self._writer.write(
            entry.id, entry.claim, cancel_requested=True, message=entry.message
        )
        if self.book.get(job_id) is entry:
            self._ledger.publish("progress", entry)
        return entry_view(entry)

    async def cancel_and_wait(self, job_id: str, timeout: float) -> bool:
        """Cancel a job unless it has ended, and wait up to ``timeout`` seconds for it to end
        (a running one stops at its next progress step). True when it has ended."""
        deadline = time.monotonic() + timeout
        try:
            await self.cancel(job_id)
        except JobFinished:
            return True
        cursor = self.events.last_seq
        while job_id in self.book:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            events = await self.events.wait_since(cursor, remaining)
            cursor = max([cursor, *(e["seq"] for e in events)])
        if self._ledger.finished_lately(job_id):
            return True
        # Another queue holds it (it reads the cancel at its next renewal): ended once its
        # row says so.
        while not JobStatus((await self.store.get_job(job_id)).status).is_terminal:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(min(OTHER_QUEUE_POLL_S, max(deadline - time.monotonic(), 0)))
        return True

    async def _settle(self, job_id: str) -> None:
        """Wait for the final write of a job this queue ended lately, so its row is read as
        ended, not as an active job to adopt again."""
        if self._ledger.finished_lately(job_id):
            await self.flush()

    def _refused(self, job_id: str, claim: int) -> None:
        # The writer reports to the roster, which is built after it.
        self._roster.refused(job_id, claim)

    def _lose(self, entry: JobEntry) -> None:
        # The CPU stages drop jobs through the roster, which is built after them.
        self._roster.lose(entry)

    # --- the workers' side (`WorkerDesk`) ---------------------------------------------------

    async def claim(self, worker: str, timeout: float) -> GenerateTicket | None:
        return await self._desk.claim(worker, timeout)

    async def report_progress(
        self, job_id: str, worker: str, claim: int, fraction: float, message: str, seq: int = 0
    ) -> bool:
        return await self._desk.report_progress(job_id, worker, claim, fraction, message, seq)

    def stage_progress(
        self, job_id: str, claim: int, fraction: float, message: str, seq: int = 0
    ) -> bool:
        return self._desk.stage_progress(job_id, claim, fraction, message, seq)

    def export_progress(
        self,
        asset_id: str,
        operation: str,
        fraction: float,
        message: str,
        owner: str | None = None,
        run: str = "",
        seq: int = 0,
    ) -> bool:
        """Progress of an export asked for through the API (LODs, formats, engine bundles);
        ``run`` names one export and ``seq`` numbers its reports: one that overtook a later
        report is dropped. Always True: such an export is not cancelled."""
        if run and seq and not self._export_runs.is_next(run, seq):
            return True
        self.events.publish(
            "export_progress",
            asset_id=asset_id,
            owner=owner,
            operation=operation,
            progress=round(min(max(fraction, 0.0), 1.0), 4),
            message=message,
        )
        return True

    def heartbeat(self, job_id: str, worker: str, claim: int) -> bool:
        return self._desk.heartbeat(job_id, worker, claim)

    async def generated(
        self, job_id: str, worker: str, claim: int, seconds: float, gpu_s: float | None = None
    ) -> None:
        await self._desk.generated(job_id, worker, claim, seconds, gpu_s)

    async def generation_failed(
        self, job_id: str, worker: str, claim: int, error: str, cancelled: bool
    ) -> None:
        await self._desk.generation_failed(job_id, worker, claim, error, cancelled)

    async def release(self, job_id: str, worker: str, claim: int) -> None:
        await self._desk.release(job_id, worker, claim)

    async def leave(self, worker: str) -> None:
        """A generator replica is being stopped: it claims no more jobs, and a claim it is
        waiting on ends now, with none, so that its shutdown need not wait for the claim."""
        await self._gpu.leave(worker)

    async def generator_state(
        self,
        worker: str,
        state: str,
        detail: str = "",
        running: dict[str, str | None] | None = None,
    ) -> None:
        """A generator replica says how it is (loading, idle, generating, unavailable,
        stopped), and once loaded which generator runs and, if a fallback, why."""
        if state == "stopped":
            self._generators.forget(worker)
            self._gpu.left(worker)
        else:
            self._generators.seen(worker, state=state, detail=detail, running=running)
        self._ledger.publish_queue()
        await self._gpu.fail_if_no_generator()

    # --- reading ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "queue_depth": self.book.depth(),
            "by_stage": self.book.by_stage(),
            "active_jobs": len(self.book),
            "preprocessing_slots": self.preprocess_concurrency,
            "export_slots": self._exports.slots,
            "waiting_for_export": len(self._exports),
            "generators": self._generators.live(),
        }

    def gpu_demand(self) -> int:
        """Jobs that need a generator now or soon: in line, being prepared, waiting for a GPU
        or generating (what the Generator replicas scale on)."""
        return sum(1 for entry in self.book.entries() if entry.stage in GPU_BOUND)

    def jobs(self) -> list[dict[str, Any]]:
        return [entry_view(e) for e in self.book.in_order()]

    async def read_events(self, epoch: str, cursor: int, timeout: float) -> dict[str, Any]:
        """Events after ``cursor`` (long-poll); a different ``epoch`` reads from the start.

        An empty ``epoch`` asks only where the log stands, for a reader that starts now.
        """
        if not epoch:
            events: list[Event] = []
        else:
            if epoch != self.events.epoch:
                cursor = 0
            events = await self.events.wait_since(cursor, timeout)
        return {"epoch": self.events.epoch, "last_seq": self.events.last_seq, "events": events}
