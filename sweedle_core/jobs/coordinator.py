"""The job coordinator: the priority queue, the dispatcher and the progress broadcaster.

One instance lives in the JobQueue actor. It keeps active jobs in memory (a cache), writes every
state change to the database (the truth) before announcing it, and rebuilds itself from the
database when it starts. CPU work (preprocessing, export) is pushed to worker pools; generators
pull jobs with `claim`, so a generator never waits for CPU work and takes its next job at once.

The coordinator decides what happens to a job next; `ledger` records each change (memory, the
ordered database `writer`, events), `generators` keeps what generator replicas said of themselves,
and `resume`, `views` and `tickets` turn rows and entries into entries, replies and work orders.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine
from typing import Any, TypeVar

from sweedle_core.asset_removal import sweep_removals
from sweedle_core.db.models import BACKGROUND_METHOD_LENGTH, GenerationJob, utcnow
from sweedle_core.db.store import Store
from sweedle_core.errors import (
    GenerationFailed,
    JobFinished,
    ShapeLost,
    SweedleError,
    WorkerLost,
    unwrapped,
)
from sweedle_core.jobs.book import JobBook, JobEntry
from sweedle_core.jobs.events import Event, EventLog
from sweedle_core.jobs.generators import GeneratorRegistry
from sweedle_core.jobs.holds import ClaimLost, QueueHolds
from sweedle_core.jobs.lane import PoolLane
from sweedle_core.jobs.ledger import JobLedger, Webhooks
from sweedle_core.jobs.resume import resumed_entry
from sweedle_core.jobs.states import JobStage, JobStatus
from sweedle_core.jobs.tickets import (
    ExportTicket,
    GenerateTicket,
    NoMetrics,
    PrepareTicket,
    QueueMetrics,
    Workers,
)
from sweedle_core.jobs.views import entry_view, row_view
from sweedle_core.jobs.writer import PROGRESS_EVERY_S, JobWriter
from sweedle_core.storage import Storage
from sweedle_core.storage.layout import painted_key, raw_mesh_key, shape_key

log = logging.getLogger(__name__)
T = TypeVar("T")
LOOK_S = 10.0  # how long a rebuild waits on the store for one job before redoing its work
DROP_WAIT_S = 5.0  # how long ending a job waits for its shape's removal
GPU_BOUND = frozenset(
    {JobStage.QUEUED, JobStage.PREPROCESSING, JobStage.WAITING_FOR_GPU, JobStage.GENERATING}
)
OTHER_QUEUE_POLL_S = 0.5  # how often a cancel of another queue's job looks whether it ended


def describe_error(exc: BaseException) -> str:
    """A one-line message for a failed stage, without Ray's wrapping traceback."""
    exc = unwrapped(exc)
    if isinstance(exc, SweedleError):
        return exc.message
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else 'no message'}"


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
        self.preprocess_concurrency = preprocess_concurrency
        self.lease_s = lease_s
        self.reconcile_s = reconcile_s
        self.stage_attempts = stage_attempts
        self.retry_backoff_s = retry_backoff_s
        self._preprocessing = 0
        # Generated jobs wait here for the CPU pool, highest priority first.
        self._exports = PoolLane(export_concurrency)
        self._holding_exports = False
        self._ready = asyncio.Condition()
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
            on_unfinished=self._drop_shape,
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeping: asyncio.Task[Any] | None = None
        self._generators = GeneratorRegistry()
        self._stopping = False

    # --- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Rebuild the queue from the database and start the background loops."""
        self._holding_exports = True  # every resumed job in the lane first, then by priority
        for row in await self._holds.adopt_at_start():
            await self._adopt(row, resume=True)
        self._holding_exports = False
        self._pump_exports()
        self._pump()
        self._spawn(self._watchdog())
        self._sweep_files()
        self._ledger.record_queue()

    async def stop(self) -> None:
        # A task ending now must not start another (`_preprocess` pumps in its `finally`).
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush()

    async def flush(self) -> None:
        """Wait until every write asked for so far is in the database."""
        await self._writer.flush()

    # --- submission and cancellation ----------------------------------------------------

    async def submit(self, job_id: str) -> dict[str, Any]:
        """Take a job the ingress has written to the database into the queue."""
        entry = self.book.get(job_id)
        if entry is None:
            await self._settle(job_id)
            row = await self._holds.adopt(job_id)
            if row is None:  # ended, or another queue holds it
                return row_view(await self.store.get_job(job_id))
            entry = await self._adopt(row, resume=False)
            self._pump()
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
            entry = await self._adopt(adopted, resume=False)
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

    # --- the generators' side -----------------------------------------------------------

    async def claim(self, worker: str, timeout: float) -> GenerateTicket | None:
        """The first job waiting for a generator, or None after ``timeout`` seconds. The
        ticket carries the job's new claim, which every report about the run names."""
        deadline = time.monotonic() + timeout
        # Idle, unless it is still busy with a job.
        self._generators.seen_done(worker, "", self.book)
        while True:
            async with self._ready:
                while (entry := self.book.pop(JobStage.WAITING_FOR_GPU)) is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    try:
                        await asyncio.wait_for(self._ready.wait(), remaining)
                    except asyncio.TimeoutError:
                        return None
            entry.worker = worker
            entry.stage = JobStage.GENERATING  # held for this worker while the claim is taken
            entry.lease_until = time.monotonic() + self.lease_s
            try:
                await self._holds.take(entry)
            except ClaimLost:
                self._lose(entry)
                continue
            except BaseException:  # the database is down: the job waits for the next claim
                entry.worker = None
                self.book.move(entry, JobStage.WAITING_FOR_GPU)
                raise
            break
        entry.attempts += 1
        entry.timings["claimed_at"] = time.time()
        self._generators.seen(worker, state="generating", job_id=entry.id)
        entry.stage = JobStage.WAITING_FOR_GPU  # so `enter` times the wait and announces it
        await self._ledger.enter(
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
        entry.lease_until = time.monotonic() + self.lease_s
        if seq and seq <= entry.report_seq:
            return True
        entry.report_seq = seq
        entry.progress = entry.progress_at(JobStage.GENERATING, fraction)
        entry.message = message
        self._writer.write_progress(
            entry.id,
            entry.claim,
            stage=entry.stage.value,
            status=entry.stage.status.value,
            progress=entry.progress,
            message=message,
        )
        self._ledger.publish("progress", entry)
        return True

    def stage_progress(
        self, job_id: str, claim: int, fraction: float, message: str, seq: int = 0
    ) -> bool:
        """Progress of a job's CPU stage (painting a text-to-3d image, the export chain) run
        under ``claim``; False: stop (cancelled, the job is no longer in such a stage, or the
        run's claim is no longer current). ``seq``: as in `report_progress`."""
        entry = self.book.get(job_id)
        if (
            entry is None
            or entry.claim != claim
            or entry.cancel_requested
            or entry.stage not in (JobStage.PREPROCESSING, JobStage.EXPORTING)
        ):
            return False
        if seq and seq <= entry.report_seq:
            return True
        entry.report_seq = seq
        entry.progress = entry.progress_at(entry.stage, fraction)
        entry.message = message
        self._writer.write_progress(entry.id, claim, progress=entry.progress, message=message)
        self._ledger.publish("progress", entry)
        return True

    def export_progress(
        self, asset_id: str, operation: str, fraction: float, message: str, owner: str | None = None
    ) -> None:
        """Progress of an export asked for through the API (LODs, formats, engine bundles)."""
        self.events.publish(
            "export_progress",
            asset_id=asset_id,
            owner=owner,
            operation=operation,
            progress=round(min(max(fraction, 0.0), 1.0), 4),
            message=message,
        )

    def heartbeat(self, job_id: str, worker: str, claim: int) -> bool:
        """A generator still runs the job (extends its lease); False: stop."""
        entry = self._owned(job_id, worker, claim)
        if entry is None:
            return False
        entry.lease_until = time.monotonic() + self.lease_s
        self._generators.seen(worker, state="generating", job_id=job_id)
        return not entry.cancel_requested

    async def generated(
        self, job_id: str, worker: str, claim: int, seconds: float, gpu_s: float | None = None
    ) -> None:
        """A generator stored the shape (its GPU stage's hand-off) or its painting: the job
        waits for the CPU pool, which makes the mesh and its exports; the generator is free."""
        entry = self._owned(job_id, worker, claim)
        self._generators.seen_done(worker, job_id, self.book)
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
            await self._ledger.cancelled(entry)
            return
        await self._ledger.enter(
            entry, JobStage.EXPORTING, fraction=0.0, message="waiting for a CPU worker"
        )
        self._queue_export(entry)

    async def generation_failed(
        self, job_id: str, worker: str, claim: int, error: str, cancelled: bool
    ) -> None:
        entry = self._owned(job_id, worker, claim)
        self._generators.seen_done(worker, job_id, self.book)
        if entry is None:
            return
        if cancelled or entry.cancel_requested:
            await self._ledger.cancelled(entry)
        else:
            await self._ledger.failed(entry, error)

    async def release(self, job_id: str, worker: str, claim: int) -> None:
        """A generator that is shutting down gives its job back: it waits for the next one."""
        entry = self._owned(job_id, worker, claim)
        if entry is not None:
            await self._requeue(entry, "requeued: its generator stopped")

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
        else:
            self._generators.seen(worker, state=state, detail=detail, running=running)
        self._ledger.publish_queue()
        await self._fail_if_no_generator()

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

    # --- the pipeline -------------------------------------------------------------------

    def _pump(self) -> None:
        """Send waiting jobs to preprocessing, highest priority first, up to the slot count."""
        while not self._stopping and self._preprocessing < self.preprocess_concurrency:
            entry = self.book.pop(JobStage.QUEUED)
            if entry is None:
                return
            self._preprocessing += 1
            self._ledger.close_stage(entry)
            entry.stage = JobStage.PREPROCESSING
            self._spawn(self._preprocess(entry))

    async def _preprocess(self, entry: JobEntry) -> None:
        try:
            await self._ledger.enter(
                entry, JobStage.PREPROCESSING, fraction=0.0, message="preparing image"
            )
            try:
                outcome = await self._attempts(
                    entry,
                    JobStage.PREPROCESSING,
                    lambda: self.workers.preprocess(PrepareTicket.for_job(entry)),
                )
            except ClaimLost:
                self._lose(entry)
                return
            except Exception as exc:  # any failure of the stage fails the job, not the queue
                if entry.cancel_requested:
                    await self._ledger.cancelled(entry)
                else:
                    await self._ledger.failed(entry, self._failure("preprocessing", exc))
                return
            entry.timings["preprocess_s"] = round(outcome.seconds, 4)
            entry.timings["ready_at"] = time.time()
            if entry.cancel_requested:
                await self._ledger.cancelled(entry)
                return
            await self._ledger.enter(
                entry,
                JobStage.WAITING_FOR_GPU,
                fraction=1.0,
                message="waiting for a generator",
                background_method=outcome.background[:BACKGROUND_METHOD_LENGTH],
            )
            async with self._ready:
                self._ready.notify_all()
            await self._fail_if_no_generator()
        finally:
            self._preprocessing -= 1
            self._pump()

    def _queue_export(self, entry: JobEntry) -> None:
        self._exports.push(entry)
        self._pump_exports()

    def _pump_exports(self) -> None:
        """Send generated jobs to the CPU pool, highest priority first, up to its slots."""
        if self._holding_exports:
            return
        while not self._stopping and (entry := self._exports.take()) is not None:
            if self.book.get(entry.id) is not entry or entry.stage is not JobStage.EXPORTING:
                self._exports.done()  # finished (cancelled) while it waited
                continue
            if self._spawn(self._export(entry)) is None:
                self._exports.done()

    async def _export(self, entry: JobEntry) -> None:
        try:
            await self._run_export(entry)
        finally:
            self._exports.done()
            self._pump_exports()

    async def _run_export(self, entry: JobEntry) -> None:
        paint = self._paint_next(entry)
        entry.message = "making the mesh"
        self._ledger.publish("progress", entry)
        try:
            outcome = await self._attempts(
                entry,
                JobStage.EXPORTING,
                lambda: self.workers.export(ExportTicket.for_job(entry, paint=paint)),
            )
        except ClaimLost:
            self._lose(entry)
            return
        except Exception as exc:
            if entry.cancel_requested:
                await self._ledger.cancelled(entry)
            elif not await self._regenerate_lost_shape(entry, exc):
                # The CPU stage is the generation's second half: no surface is its failure.
                failed = unwrapped(exc)
                ours = isinstance(failed, (GenerationFailed, ShapeLost))
                await self._ledger.failed(
                    entry, self._failure("generation" if ours else "export", exc)
                )
            return
        finish_s = entry.timings.get("finish_s", 0.0) if entry.paint_visits else 0.0
        entry.timings["finish_s"] = round(finish_s + outcome.finish_s, 4)
        if outcome.paint and not entry.cancel_requested:
            entry.paint_visits += 1
            entry.progress_base = entry.progress  # the trip's progress runs on from here
            await self._requeue(entry, "waiting for a GPU to paint the texture")
            return
        entry.timings["export_s"] = round(outcome.seconds, 4)
        if entry.cancel_requested:
            await self._ledger.cancelled(entry)
            return
        entry.progress = 1.0
        entry.message = "completed"
        asset = {
            "model_path": outcome.model_path,
            "thumbnail_path": outcome.thumbnail_path,
            "vertex_count": outcome.vertex_count,
            "face_count": outcome.face_count,
            "texture_method": outcome.texture,
            "lods": outcome.lods,
            "validation": outcome.validation,
        }
        if outcome.generator is not None:  # what ran, which a fallback makes differ from the
            asset["generator"] = outcome.generator  # backend named at submission
        if not entry.input_path:  # a text-to-3d job's painted image, stored by now
            asset["input_path"] = painted_key(entry.asset_id)

        await self._ledger.finish(entry, JobStatus.COMPLETED, "asset_ready", asset_fields=asset)

    # --- helpers ------------------------------------------------------------------------

    async def _attempts(
        self, entry: JobEntry, stage: JobStage, work: Callable[[], Awaitable[T]]
    ) -> T:
        """``work()``, run again (on whichever replica takes it) while the worker running it
        dies, up to ``stage_attempts`` runs in all; any other error is the job's and raised.
        Each run has a claim of its own, so a worker taken for dead changes nothing if it was
        not; `ClaimLost` when the job is no longer this queue's."""
        while True:
            await self._holds.take(entry)
            try:
                return await work()
            except Exception as exc:
                lost = isinstance(unwrapped(exc), WorkerLost) and not entry.cancel_requested
                attempt = self._next_attempt(entry, stage) if lost else None
                if attempt is None:
                    raise
                log.warning("job %s: %s lost its worker (%s); again", entry.id, stage.value, exc)
                message = f"its worker died ({describe_error(exc)}); attempt {attempt}"
                await self._ledger.enter(
                    entry,
                    stage,
                    0.0,
                    f"{message} of {self.stage_attempts}",
                    retries=dict(entry.retries),
                )
                # Serve may route to a dead replica for a moment: each try waits longer.
                await asyncio.sleep(self.retry_backoff_s * 2 ** (attempt - 2))

    async def _regenerate_lost_shape(self, entry: JobEntry, exc: BaseException) -> bool:
        """A shape gone from the store sends the job back to a generator (its GPU stage runs
        again, counted as an attempt); True when it did."""
        if not isinstance(unwrapped(exc), ShapeLost):
            return False
        attempt = self._next_attempt(entry, JobStage.GENERATING)
        if attempt is None:
            return False
        log.warning("job %s: %s", entry.id, describe_error(exc))
        await self._requeue(
            entry,
            f"requeued: its generated shape was lost; attempt {attempt} of {self.stage_attempts}",
            retries=dict(entry.retries),
        )
        return True

    def _paint_next(self, entry: JobEntry) -> bool:
        """Whether a textured job's mesh goes to a painter: once at most, and not when every
        generator that said so has none (before any said, it may go; one without a painter
        sends it back unpainted)."""
        wanted = bool(entry.params.get("texture")) and entry.paint_visits == 0
        return wanted and self._generators.can_paint() is not False

    def _next_attempt(self, entry: JobEntry, stage: JobStage) -> int | None:
        """Count one more run of ``stage`` after a lost worker and return its number, or None
        (nothing counted) when ``stage_attempts`` are used up."""
        runs = entry.retries.get(stage.value, 0) + 1
        if runs >= self.stage_attempts:
            return None
        entry.retries[stage.value] = runs
        return runs + 1

    def _failure(self, stage: str, exc: BaseException) -> str:
        """The error of a failed stage: its own, or that every attempt lost its worker."""
        if isinstance(unwrapped(exc), WorkerLost):
            return (
                f"{stage} failed: its worker died in each of {self.stage_attempts} attempts "
                f"(STAGE_MAX_ATTEMPTS); last: {describe_error(exc)}"
            )
        return f"{stage} failed: {describe_error(exc)}"

    async def _adopt(self, row: GenerationJob, resume: bool) -> JobEntry:
        """Make a database row an active entry; on ``resume`` put in-flight work back in line."""
        existing = self.book.get(row.id)
        if existing is not None:
            return existing  # adopted while the caller read the row (submit vs. reconcile)
        stage = JobStage(row.stage)
        stored = stage is JobStage.EXPORTING and await self._has_hand_off(row)
        if (existing := self.book.get(row.id)) is not None:
            return existing  # adopted by another caller while the store was asked
        entry = resumed_entry(row, stored)
        self.book.add(entry)
        if entry.stage is not stage:
            await self._writer.write(
                entry.id, entry.claim, stage=entry.stage.value, status=entry.stage.status.value
            )
        if not resume:
            self._ledger.publish("job_created", entry)
        if entry.cancel_requested and entry.stage in (
            JobStage.QUEUED,
            JobStage.WAITING_FOR_GPU,
            JobStage.EXPORTING,
        ):
            # Its work stopped with the old queue: nothing to redo.
            await self._ledger.cancelled(entry)
            return entry
        if entry.stage is JobStage.EXPORTING:
            self._queue_export(entry)
        if entry.stage is JobStage.WAITING_FOR_GPU:
            async with self._ready:
                self._ready.notify_all()
        self._ledger.publish_queue()
        return entry

    async def _has_hand_off(self, row: GenerationJob) -> bool:
        """Whether the GPU stage's work for ``row`` is stored, as its shape or (the CPU stage
        done) its mesh; False, so the GPU stage runs again, when the store cannot say."""

        def stored() -> bool:
            keys = (shape_key(row.asset_id), raw_mesh_key(row.asset_id))
            return any(self.storage.exists(key) for key in keys)

        try:
            return await asyncio.wait_for(asyncio.to_thread(stored), LOOK_S)
        except (SweedleError, asyncio.TimeoutError) as exc:
            log.warning("job %s: cannot look for its generated shape (%r)", row.id, exc)
            return False

    def _owned(self, job_id: str, worker: str, claim: int) -> JobEntry | None:
        """The job if ``worker`` may go on with its run under ``claim``; adopts a run that a
        restarted queue put back in line (the claim survived the restart: it is the run's)."""
        entry = self.book.get(job_id)
        if entry is None or entry.claim != claim:
            return None
        if entry.stage is JobStage.WAITING_FOR_GPU and entry.worker in (None, worker):
            # The queue restarted while this generator ran the job: keep it where it is.
            entry.worker = worker
            entry.stage = JobStage.GENERATING
            entry.lease_until = time.monotonic() + self.lease_s
        if entry.stage is not JobStage.GENERATING or entry.worker != worker:
            return None
        return entry

    async def _watchdog(self) -> None:
        """Put back jobs whose generator went silent, renew the leases of the rest, and adopt
        jobs nobody holds (a submit lost on the way, a queue gone silent)."""
        last_reconcile = time.monotonic()
        while True:
            await asyncio.sleep(min(self.lease_s / 4, self.reconcile_s))
            now = time.monotonic()
            try:
                await self._requeue_silent(now)
                await self._renew()
                if now - last_reconcile >= self.reconcile_s:
                    last_reconcile = now
                    await self._reconcile()
            except Exception:  # a database hiccup must not end the watchdog for good
                log.exception("job watchdog pass failed; the next pass tries again")

    async def _requeue_silent(self, now: float) -> None:
        for entry in self.book.entries():
            if self.book.get(entry.id) is not entry:
                continue  # finished while an earlier job was being requeued
            if entry.stage is not JobStage.GENERATING or entry.lease_until >= now:
                continue
            if entry.cancel_requested:
                await self._ledger.cancelled(entry)  # nobody runs it any more: the cancel is done
                continue
            attempt = self._next_attempt(entry, JobStage.GENERATING)
            if attempt is None:
                await self._ledger.failed(
                    entry,
                    "generation failed: its generator went silent in each of "
                    f"{self.stage_attempts} attempts (a killed replica or a lost node; "
                    "STAGE_MAX_ATTEMPTS)",
                )
                continue
            log.warning("job %s: generator %s went silent; requeued", entry.id, entry.worker)
            await self._requeue(
                entry,
                f"requeued: its generator went silent; attempt {attempt} of {self.stage_attempts}",
                retries=dict(entry.retries),
            )

    async def _settle(self, job_id: str) -> None:
        """Wait for the final write of a job this queue ended lately, so its row is read as
        ended, not as an active job to adopt again."""
        if self._ledger.finished_lately(job_id):
            await self.flush()

    async def _renew(self) -> None:
        """Extend the leases of every job this queue holds (those with a generator: while its
        heartbeat comes, see `_requeue_silent`); drop the jobs another queue took, and cancel
        those a user asked another queue to cancel."""
        entries = self.book.entries()
        renewal = await self._holds.renew([entry.id for entry in entries])
        for entry in entries:
            if self.book.get(entry.id) is not entry:
                continue  # ended or dropped while the leases were renewed
            if entry.id not in renewal.held:
                self._lose(entry)
            elif entry.id in renewal.cancel_requested and not entry.cancel_requested:
                try:
                    await self.cancel(entry.id)
                except JobFinished:
                    pass

    async def _reconcile(self) -> None:
        """Adopt the jobs nobody holds: a submit lost on the way, a queue gone silent."""
        for row in await self._holds.adopt_free():
            if (stale := self.book.get(row.id)) is not None:
                self._lose(stale)  # its lease ran out here (a stalled loop): redo in-flight work
            if not self._ledger.finished_lately(row.id):
                await self._adopt(row, resume=False)
        self._pump()
        self._sweep_files()

    def _refused(self, job_id: str, claim: int) -> None:
        """The database refused a write made under ``claim``: the job ended or is another's."""
        entry = self.book.get(job_id)
        if entry is not None and entry.claim == claim:
            self._lose(entry)

    def _lose(self, entry: JobEntry) -> None:
        """Forget a job whose claim is no longer this queue's; its workers are told to stop at
        their next report. Its holder now runs it and announces its end."""
        if self.book.get(entry.id) is not entry:
            return
        self.book.remove(entry.id)
        self._exports.discard(entry.id)
        self._writer.forget(entry.id)
        log.warning("job %s: its claim is no longer this queue's; dropped here", entry.id)
        self._ledger.publish_queue()

    def _sweep_files(self) -> None:
        """Finish removals of files (deleted assets, abandoned uploads) in the background, one
        sweep at a time, so a slow store never holds up the watchdog."""
        if self._sweeping is None or self._sweeping.done():
            self._sweeping = self._spawn(sweep_removals(self.store, self.storage))

    async def _requeue(self, entry: JobEntry, message: str, **fields: Any) -> None:
        entry.worker = None
        await self._ledger.enter(entry, JobStage.WAITING_FOR_GPU, 1.0, message, **fields)
        async with self._ready:
            self._ready.notify_all()

    async def _drop_shape(self, entry: JobEntry) -> None:
        """Remove the shape of a job that ends without its CPU stage (it can be hundreds of
        MB). Best effort: waited for a few seconds at most, then left to finish in the
        background; one left behind goes with the asset's folder."""

        async def drop() -> None:
            try:
                await asyncio.to_thread(self.storage.delete, shape_key(entry.asset_id))
            except Exception as exc:  # a store outage must not fail anything here
                log.warning("job %s: could not remove its shape (%r)", entry.id, exc)

        task = self._spawn(drop())
        if task is not None:
            await asyncio.wait([task], timeout=DROP_WAIT_S)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any] | None:
        if self._stopping:
            coro.close()
            return None
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("job coordinator task failed", exc_info=task.exception())

    async def _fail_if_no_generator(self) -> None:
        """Fail the jobs waiting for a generator when every generator replica there is says it
        cannot run (weights or libraries missing): they would wait forever otherwise.

        With no replica at all (still pending, e.g. waiting for a GPU node) jobs keep waiting.
        """
        reasons = self._generators.unavailable_reasons()
        if reasons is None:
            return
        for entry in self.book.entries():
            if entry.stage is JobStage.WAITING_FOR_GPU and not entry.cancel_requested:
                await self._ledger.failed(entry, f"generation unavailable: {reasons}")
