"""The job coordinator: the priority queue, the dispatcher and the progress broadcaster.

One instance lives in the JobQueue actor. It keeps active jobs in memory (a cache), writes every
state change to the database (the truth) before announcing it, and rebuilds itself from the
database when it starts. CPU work (preprocessing, export) is pushed to worker pools; generators
pull jobs with `claim`, so a generator never waits for CPU work and takes its next job at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timezone
from typing import Any

from sweedle_core.db.models import GenerationJob, utcnow
from sweedle_core.db.store import Store, as_utc
from sweedle_core.errors import JobFinished, SweedleError, unwrapped
from sweedle_core.jobs.book import JobBook, JobEntry
from sweedle_core.jobs.events import Event, EventLog
from sweedle_core.jobs.states import JobStage, JobStatus, overall_progress
from sweedle_core.jobs.tickets import (
    ExportTicket,
    GenerateTicket,
    NoMetrics,
    PrepareTicket,
    QueueMetrics,
    Workers,
)
from sweedle_core.params import Priority
from sweedle_core.storage import Storage

log = logging.getLogger(__name__)

# A generator that has not called in for this long is gone (it calls at least every ~10 s).
GENERATOR_SILENCE_S = 60.0
# How many finished job ids the queue remembers, so a reconcile pass never revives one.
FINISHED_MEMORY = 10_000

# Where a job found in the database at start resumes: work in flight is redone from its input.
_RESUME = {
    JobStage.QUEUED: JobStage.QUEUED,
    JobStage.PREPROCESSING: JobStage.QUEUED,
    JobStage.WAITING_FOR_GPU: JobStage.WAITING_FOR_GPU,
    JobStage.GENERATING: JobStage.WAITING_FOR_GPU,
    JobStage.EXPORTING: JobStage.EXPORTING,
}


def describe_error(exc: BaseException) -> str:
    """A one-line message for a failed stage, without Ray's wrapping traceback."""
    exc = unwrapped(exc)
    if isinstance(exc, SweedleError):
        return exc.message
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else 'no message'}"


def _log_write_error(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("a database write failed", exc_info=future.exception())


class JobCoordinator:
    def __init__(
        self,
        store: Store,
        storage: Storage,
        workers: Workers,
        *,
        preprocess_concurrency: int = 4,
        lease_s: float = 60.0,
        reconcile_s: float = 30.0,
        metrics: QueueMetrics | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.workers = workers
        self.events = EventLog()
        self.book = JobBook()
        self.metrics = metrics or NoMetrics()
        self.preprocess_concurrency = preprocess_concurrency
        self.lease_s = lease_s
        self.reconcile_s = reconcile_s
        self._preprocessing = 0
        self._ready = asyncio.Condition()
        # Every database write goes through one FIFO writer: the database sees changes in the
        # order they happened, and a caller that need not wait for its write does not.
        self._writes: asyncio.Queue[tuple[Callable[[], Awaitable[Any]], asyncio.Future[Any]]] = (
            asyncio.Queue()
        )
        self._writer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._generators: dict[str, dict[str, Any]] = {}
        # Jobs this queue finished lately: a reconcile pass may still read them as active.
        self._finished: dict[str, None] = {}
        self._stopping = False

    # --- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Rebuild the queue from the database and start the background loops."""
        for row in await self.store.active_jobs():
            await self._adopt(row, resume=True)
        self._pump()
        self._spawn(self._watchdog())
        self._record_queue()

    async def stop(self) -> None:
        # A task ending now must not start another (`_preprocess` pumps in its `finally`).
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush()

    async def flush(self) -> None:
        """Wait until every write asked for so far is in the database."""
        if self._writer is not None:
            await asyncio.shield(self._writer)

    # --- submission and cancellation ----------------------------------------------------

    async def submit(self, job_id: str) -> dict[str, Any]:
        """Take a job the ingress has written to the database into the queue."""
        entry = self.book.get(job_id)
        if entry is None:
            row = await self.store.get_job(job_id)
            if JobStatus(row.status).is_terminal:
                return self._row_view(row)
            entry = await self._adopt(row, resume=False)
            self._pump()
        return self._view(entry)

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job: a waiting one ends now, a running one at its next progress step."""
        entry = self.book.get(job_id)
        if entry is None:
            row = await self.store.get_job(job_id)
            if JobStatus(row.status).is_terminal:
                raise JobFinished(f"job {job_id} is already {row.status}; it cannot be cancelled")
            entry = await self._adopt(row, resume=False)
        if entry.stage in (JobStage.QUEUED, JobStage.WAITING_FOR_GPU):
            await self._cancelled(entry)
            return self._view(entry, status=JobStatus.CANCELLED)
        entry.cancel_requested = True
        entry.message = "cancelling"
        # Written, so a queue that restarts before the job stops still cancels it.
        await self._write(entry.id, cancel_requested=True, message=entry.message)
        if self.book.get(job_id) is entry:
            self._publish("progress", entry)
        return self._view(entry)

    # --- the generators' side -----------------------------------------------------------

    async def claim(self, worker: str, timeout: float) -> GenerateTicket | None:
        """The first job waiting for a generator, or None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        self._seen_done(worker, "")  # idle unless it is still busy with a job
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
        entry.attempts += 1
        entry.timings["claimed_at"] = time.time()
        entry.lease_until = time.monotonic() + self.lease_s
        self._seen(worker, state="generating", job_id=entry.id)
        await self._enter(
            entry,
            JobStage.GENERATING,
            fraction=0.0,
            message="generating",
            worker=worker,
            attempts=entry.attempts,
            started_at=utcnow(),
        )
        return GenerateTicket(
            job_id=entry.id,
            asset_id=entry.asset_id,
            prepared_path=Storage.prepared_name(entry.asset_id),
            raw_mesh_path=Storage.raw_mesh_name(entry.asset_id),
            params=entry.params,
            attempt=entry.attempts,
        )

    async def report_progress(
        self, job_id: str, worker: str, fraction: float, message: str
    ) -> bool:
        """Record a generator's progress; False tells it to stop (cancelled or no longer its job)."""
        entry = self._owned(job_id, worker)
        if entry is None or entry.cancel_requested:
            return False
        entry.lease_until = time.monotonic() + self.lease_s
        entry.progress = overall_progress(JobStage.GENERATING, fraction)
        entry.message = message
        self._write_later(
            entry.id,
            stage=entry.stage.value,
            status=entry.stage.status.value,
            progress=entry.progress,
            message=message,
        )
        self._publish("progress", entry)
        return True

    def preparing_progress(self, job_id: str, fraction: float, message: str) -> bool:
        """Progress of a job's preparation (painting a text-to-3d image); False: stop."""
        entry = self.book.get(job_id)
        if entry is None or entry.cancel_requested or entry.stage is not JobStage.PREPROCESSING:
            return False
        entry.progress = overall_progress(JobStage.PREPROCESSING, fraction)
        entry.message = message
        self._write_later(entry.id, progress=entry.progress, message=message)
        self._publish("progress", entry)
        return True

    def heartbeat(self, job_id: str, worker: str) -> bool:
        entry = self._owned(job_id, worker)
        if entry is None:
            return False
        entry.lease_until = time.monotonic() + self.lease_s
        self._seen(worker, state="generating", job_id=job_id)
        return not entry.cancel_requested

    async def generated(self, job_id: str, worker: str, seconds: float) -> None:
        """A generator wrote the raw mesh: hand it to the export pool and free the generator."""
        entry = self._owned(job_id, worker)
        self._seen_done(worker, job_id)
        if entry is None:
            return
        entry.timings["generate_s"] = round(seconds, 4)
        entry.timings["generated_at"] = time.time()
        if entry.cancel_requested:
            await self._cancelled(entry)
            return
        await self._enter(entry, JobStage.EXPORTING, fraction=0.0, message="exporting")
        self._spawn(self._export(entry))

    async def generation_failed(
        self, job_id: str, worker: str, error: str, cancelled: bool
    ) -> None:
        entry = self._owned(job_id, worker)
        self._seen_done(worker, job_id)
        if entry is None:
            return
        if cancelled or entry.cancel_requested:
            await self._cancelled(entry)
        else:
            await self._failed(entry, error)

    async def release(self, job_id: str, worker: str) -> None:
        """A generator that is shutting down gives its job back: it waits for the next one."""
        entry = self._owned(job_id, worker)
        if entry is not None:
            await self._requeue(entry, "requeued: its generator stopped")

    async def generator_state(self, worker: str, state: str, detail: str = "") -> None:
        """A generator replica says how it is: loading, idle, generating, unavailable, stopped."""
        if state == "stopped":
            self._generators.pop(worker, None)
        else:
            self._seen(worker, state=state, detail=detail)
        self._publish_queue()
        await self._fail_if_no_generator()

    # --- reading ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "queue_depth": self.book.depth(),
            "by_stage": self.book.by_stage(),
            "active_jobs": len(self.book),
            "preprocessing_slots": self.preprocess_concurrency,
            "generators": self._live_generators(),
        }

    def jobs(self) -> list[dict[str, Any]]:
        return [self._view(e) for e in self.book.in_order()]

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
            self._close_stage(entry)
            entry.stage = JobStage.PREPROCESSING
            self._spawn(self._preprocess(entry))

    async def _preprocess(self, entry: JobEntry) -> None:
        try:
            await self._enter(
                entry, JobStage.PREPROCESSING, fraction=0.0, message="preparing image"
            )
            ticket = PrepareTicket(
                job_id=entry.id,
                asset_id=entry.asset_id,
                input_path=entry.input_path,
                prepared_path=Storage.prepared_name(entry.asset_id),
                remove_background=bool(entry.params.get("remove_background", True)),
                prompt=entry.prompt,
                seed=int(entry.params.get("seed", 0)),
            )
            try:
                outcome = await self.workers.preprocess(ticket)
            except Exception as exc:  # any failure of the stage fails the job, not the queue
                if entry.cancel_requested:
                    await self._cancelled(entry)
                else:
                    await self._failed(entry, f"preprocessing failed: {describe_error(exc)}")
                return
            entry.timings["preprocess_s"] = round(outcome.seconds, 4)
            entry.timings["ready_at"] = time.time()
            if entry.cancel_requested:
                await self._cancelled(entry)
                return
            await self._enter(
                entry,
                JobStage.WAITING_FOR_GPU,
                fraction=1.0,
                message="waiting for a generator",
                background_method=outcome.background,
            )
            async with self._ready:
                self._ready.notify_all()
            await self._fail_if_no_generator()
        finally:
            self._preprocessing -= 1
            self._pump()

    async def _export(self, entry: JobEntry) -> None:
        ticket = ExportTicket(
            job_id=entry.id,
            asset_id=entry.asset_id,
            raw_mesh_path=Storage.raw_mesh_name(entry.asset_id),
            output_format=str(entry.params.get("output_format", "glb")),
        )
        try:
            outcome = await self.workers.export(ticket)
        except Exception as exc:
            await self._failed(entry, f"export failed: {describe_error(exc)}")
            return
        entry.timings["export_s"] = round(outcome.seconds, 4)
        if entry.cancel_requested:
            await self._cancelled(entry)
            return
        entry.progress = 1.0
        entry.message = "completed"
        asset = {
            "model_path": outcome.model_path,
            "thumbnail_path": outcome.thumbnail_path,
            "vertex_count": outcome.vertex_count,
            "face_count": outcome.face_count,
            "texture_method": outcome.texture,
        }
        await self._finish(entry, JobStatus.COMPLETED, "asset_ready", asset_fields=asset)

    # --- final states -------------------------------------------------------------------

    async def _failed(self, entry: JobEntry, error: str) -> None:
        entry.message = error
        await self._finish(entry, JobStatus.FAILED, "job_failed", job_fields={"error": error})

    async def _cancelled(self, entry: JobEntry) -> None:
        entry.message = "cancelled"
        await self._finish(entry, JobStatus.CANCELLED, "job_cancelled")

    async def _finish(
        self,
        entry: JobEntry,
        status: JobStatus,
        event: str,
        job_fields: dict[str, Any] | None = None,
        asset_fields: dict[str, Any] | None = None,
    ) -> None:
        if self.book.remove(entry.id) is None:
            return  # finished already, by another path
        self._remember_finished(entry.id)
        self._close_stage(entry)
        job_fields = {
            "stage": entry.stage.value,
            "progress": entry.progress,
            "message": entry.message,
            "timings": entry.timings,
            **(job_fields or {}),
        }
        try:
            await self._queued(
                lambda: self.store.finish_job(entry.id, status, job_fields, asset_fields or {})
            )
        except BaseException:
            self._finished.pop(entry.id, None)  # still active in the database: adopt it again
            raise
        self.metrics.record_finished(status.value)
        payload: dict[str, Any] = {"asset": asset_fields} if asset_fields else {}
        if status is JobStatus.FAILED:
            payload["error"] = entry.message
        self._publish(event, entry, status=status, **payload)
        self._publish_queue()

    # --- helpers ------------------------------------------------------------------------

    async def _adopt(self, row: GenerationJob, resume: bool) -> JobEntry:
        """Make a database row an active entry; on ``resume`` put in-flight work back in line."""
        existing = self.book.get(row.id)
        if existing is not None:
            return existing  # adopted while the caller read the row (submit vs. reconcile)
        stage = JobStage(row.stage)
        entry = JobEntry(
            id=row.id,
            asset_id=row.asset_id,
            priority=Priority(row.priority),
            created_at=as_utc(row.created_at).astimezone(timezone.utc).timestamp(),
            params=dict(row.params),
            input_path=row.asset.input_path or "",
            prompt=row.asset.prompt,
            stage=_RESUME.get(stage, JobStage.QUEUED),
            timings=dict(row.timings or {}),
            attempts=row.attempts,
            stage_started=time.monotonic(),
            cancel_requested=row.cancel_requested,
        )
        if (
            entry.stage is JobStage.EXPORTING
            and not self.storage.path(Storage.raw_mesh_name(entry.asset_id)).exists()
        ):
            entry.stage = JobStage.WAITING_FOR_GPU
        self.book.add(entry)
        if entry.stage is not stage:
            await self._write(entry.id, stage=entry.stage.value, status=entry.stage.status.value)
        if not resume:
            self._publish("job_created", entry)
        if entry.cancel_requested and entry.stage in (JobStage.QUEUED, JobStage.WAITING_FOR_GPU):
            await self._cancelled(entry)  # its work stopped with the old queue: nothing to redo
            return entry
        if entry.stage is JobStage.EXPORTING:
            self._spawn(self._export(entry))
        if entry.stage is JobStage.WAITING_FOR_GPU:
            async with self._ready:
                self._ready.notify_all()
        self._publish_queue()
        return entry

    def _owned(self, job_id: str, worker: str) -> JobEntry | None:
        """The job if ``worker`` may go on with it; adopts a job a restarted queue put back."""
        entry = self.book.get(job_id)
        if entry is None:
            return None
        if entry.stage is JobStage.WAITING_FOR_GPU and entry.worker in (None, worker):
            # The queue restarted while this generator ran the job: keep it where it is.
            entry.worker = worker
            entry.stage = JobStage.GENERATING
            entry.lease_until = time.monotonic() + self.lease_s
        if entry.stage is not JobStage.GENERATING or entry.worker != worker:
            return None
        return entry

    async def _enter(
        self, entry: JobEntry, stage: JobStage, fraction: float, message: str, **fields: Any
    ) -> None:
        """Move a job to ``stage``: time the old stage, write the change, announce it.

        The write is queued, not waited for: work moves on at once, and a crash before it lands
        leaves the job at its previous stage, from which the rebuild redoes it. Only a job's
        final state is waited for before it is announced (`_finish`).
        """
        if entry.stage is not stage:
            self._close_stage(entry)
        if stage in (JobStage.QUEUED, JobStage.WAITING_FOR_GPU):
            self.book.move(entry, stage)
        entry.stage = stage
        entry.progress = overall_progress(stage, fraction)
        entry.message = message
        change = dict(
            stage=stage.value,
            status=stage.status.value,
            progress=entry.progress,
            message=message,
            timings=dict(entry.timings),
            **fields,
        )
        self._write_later(entry.id, **change)
        self._publish("progress", entry)
        self._publish_queue()

    def _close_stage(self, entry: JobEntry) -> None:
        now = time.monotonic()
        if entry.stage_started:
            seconds = now - entry.stage_started
            key = f"{entry.stage.value}_wall_s"
            entry.timings[key] = round(entry.timings.get(key, 0.0) + seconds, 4)
            self.metrics.record_stage(entry.stage.value, seconds)
        entry.stage_started = now

    async def _write(self, job_id: str, **fields: Any) -> None:
        """Write fields of a job and wait until they are in the database."""
        await self._queued(lambda: self.store.update_job(job_id, **fields))

    def _write_later(self, job_id: str, **fields: Any) -> None:
        """Write fields of a job without waiting: a crash before it lands loses only a step of
        progress or a claim, which the rebuild from the database redoes."""
        future = self._queued(lambda: self.store.update_job(job_id, **fields))
        future.add_done_callback(_log_write_error)

    def _queued(self, write: Callable[[], Awaitable[Any]]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._writes.put_nowait((write, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_in_order())
        return future

    async def _write_in_order(self) -> None:
        while not self._writes.empty():
            write, future = self._writes.get_nowait()
            try:
                result = await write()
            except Exception as exc:
                if not future.cancelled():
                    future.set_exception(exc)
            else:
                if not future.cancelled():
                    future.set_result(result)

    async def _watchdog(self) -> None:
        """Put back jobs whose generator went silent; adopt jobs the queue never heard of."""
        last_reconcile = time.monotonic()
        while True:
            await asyncio.sleep(min(self.lease_s / 4, self.reconcile_s))
            now = time.monotonic()
            try:
                await self._requeue_silent(now)
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
                await self._cancelled(entry)  # nobody runs it any more: the cancel is done
                continue
            log.warning("job %s: generator %s went silent; requeued", entry.id, entry.worker)
            await self._requeue(entry, "requeued: its generator went silent")

    async def _reconcile(self) -> None:
        """Adopt active jobs the queue never heard of (a submit lost on the way)."""
        for row in await self.store.active_jobs():
            if row.id not in self.book and row.id not in self._finished:
                await self._adopt(row, resume=False)
        self._pump()

    async def _requeue(self, entry: JobEntry, message: str) -> None:
        entry.worker = None
        await self._enter(entry, JobStage.WAITING_FOR_GPU, 1.0, message)
        async with self._ready:
            self._ready.notify_all()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        if self._stopping:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("job coordinator task failed", exc_info=task.exception())

    def _seen_done(self, worker: str, job_id: str) -> None:
        """A worker finished ``job_id``: idle, unless it already runs the next one it claimed."""
        running = [
            e.id
            for e in self.book.entries()
            if e.worker == worker and e.stage is JobStage.GENERATING and e.id != job_id
        ]
        self._seen(
            worker, state="generating" if running else "idle", job_id=next(iter(running), None)
        )

    def _remember_finished(self, job_id: str) -> None:
        self._finished[job_id] = None
        if len(self._finished) > FINISHED_MEMORY:
            del self._finished[next(iter(self._finished))]

    def _seen(
        self, worker: str, state: str, detail: str | None = None, job_id: str | None = None
    ) -> None:
        known = self._generators.get(worker, {})
        self._generators[worker] = {
            "state": state,
            "detail": known.get("detail", "") if detail is None else detail,
            "job_id": job_id,
            "seen": time.time(),
        }

    def _live_generators(self) -> dict[str, dict[str, Any]]:
        now = time.time()
        return {w: i for w, i in self._generators.items() if now - i["seen"] < GENERATOR_SILENCE_S}

    async def _fail_if_no_generator(self) -> None:
        """Fail the jobs waiting for a generator when every generator replica there is says it
        cannot run (weights or libraries missing): they would wait forever otherwise.

        With no replica at all (still pending, e.g. waiting for a GPU node) jobs keep waiting.
        """
        live = self._live_generators().values()
        if not live or any(info["state"] != "unavailable" for info in live):
            return
        reasons = "; ".join(sorted({info["detail"] for info in live if info["detail"]}))
        for entry in self.book.entries():
            if entry.stage is JobStage.WAITING_FOR_GPU and not entry.cancel_requested:
                await self._failed(entry, f"generation unavailable: {reasons}")

    def _view(self, entry: JobEntry, status: JobStatus | None = None) -> dict[str, Any]:
        return {
            "job_id": entry.id,
            "asset_id": entry.asset_id,
            "status": (status or entry.stage.status).value,
            "stage": entry.stage.value,
            "progress": entry.progress,
            "priority": entry.priority.value,
            "message": entry.message,
            "cancel_requested": entry.cancel_requested,
        }

    @staticmethod
    def _row_view(row: GenerationJob) -> dict[str, Any]:
        return {
            "job_id": row.id,
            "asset_id": row.asset_id,
            "status": row.status,
            "stage": row.stage,
            "progress": row.progress,
            "priority": row.priority,
            "message": row.message or "",
            "cancel_requested": False,
        }

    def _publish(
        self, type_: str, entry: JobEntry, status: JobStatus | None = None, **extra: Any
    ) -> Event:
        return self.events.publish(type_, **self._view(entry, status), **extra)

    def _publish_queue(self) -> None:
        self.events.publish("queue_status", **self.status())
        self._record_queue()

    def _record_queue(self) -> None:
        active = {s.value: 0 for s in (JobStatus.PENDING, JobStatus.PROCESSING)}
        for entry in self.book.entries():
            active[entry.stage.status.value] += 1
        self.metrics.record_queue(self.book.depth(), active)
