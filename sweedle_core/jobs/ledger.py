"""The record of every change to an active job: in memory, in the database, then announced.

The coordinator decides what happens to a job next; the ledger records that it happened, the
same way each time: the queue's memory (the book) changes, the change goes to the database (the
truth) through the ordered writer, and it is announced on the event log and in the metrics.
Stage timings are kept here too, since every stage change passes through. Owned by one event
loop; not thread-safe.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sweedle_core.jobs.book import JobBook, JobEntry
from sweedle_core.jobs.events import Event, EventLog
from sweedle_core.jobs.states import JobStage, JobStatus
from sweedle_core.jobs.tickets import QueueMetrics
from sweedle_core.jobs.views import entry_view
from sweedle_core.jobs.writer import JobWriter


class Webhooks(Protocol):
    """Who sends a job's webhook once its end is recorded (the WebhookDispatcher)."""

    def schedule(self, delivery_id: str) -> None: ...


# How many finished job ids the queue remembers, so a reconcile pass never revives one.
FINISHED_MEMORY = 10_000


class JobLedger:
    def __init__(
        self,
        book: JobBook,
        writer: JobWriter,
        events: EventLog,
        metrics: QueueMetrics,
        queue_status: Callable[[], dict[str, Any]],
        webhooks: Webhooks | None = None,
        on_unfinished: Callable[[JobEntry], Awaitable[None]] | None = None,
    ) -> None:
        """``on_unfinished`` runs for a job that fails or is cancelled, before that is recorded
        and announced (the coordinator removes what the job left in the store)."""
        self.book = book
        self.writer = writer
        self.events = events
        self.metrics = metrics
        self._queue_status = queue_status
        self.webhooks = webhooks
        self._on_unfinished = on_unfinished
        # Jobs this queue finished lately: a reconcile pass may still read them as active.
        self._finished: dict[str, None] = {}

    def finished_lately(self, job_id: str) -> bool:
        return job_id in self._finished

    async def enter(
        self, entry: JobEntry, stage: JobStage, fraction: float, message: str, **fields: Any
    ) -> None:
        """Move a job to ``stage``: time the old stage, write the change, announce it.

        The write is queued, not waited for: work moves on at once, and a crash before it lands
        leaves the job at its previous stage, from which the rebuild redoes it. Only a job's
        final state is waited for before it is announced (`finish`).
        """
        if not self.holds(entry):
            return  # dropped (its claim went to another queue): a task left behind changes nothing
        if entry.stage is not stage:
            self.close_stage(entry)
        if stage in (JobStage.QUEUED, JobStage.WAITING_FOR_GPU):
            self.book.move(entry, stage)
        entry.stage = stage
        entry.progress = entry.progress_at(stage, fraction)
        entry.message = message
        change = dict(
            stage=stage.value,
            status=stage.status.value,
            progress=entry.progress,
            message=message,
            timings=dict(entry.timings),
            **fields,
        )
        self.writer.write_later(entry.id, entry.claim, **change)
        self.publish("progress", entry)
        self.publish_queue()

    def close_stage(self, entry: JobEntry) -> None:
        now = time.monotonic()
        if entry.stage_started:
            seconds = now - entry.stage_started
            key = f"{entry.stage.value}_wall_s"
            entry.timings[key] = round(entry.timings.get(key, 0.0) + seconds, 4)
            self.metrics.record_stage(entry.stage.value, seconds)
        entry.stage_started = now

    # --- final states -------------------------------------------------------------------

    def holds(self, entry: JobEntry) -> bool:
        """Whether ``entry`` is the job's entry in the book (not one dropped or ended)."""
        return self.book.get(entry.id) is entry

    async def failed(self, entry: JobEntry, error: str) -> None:
        if not self.holds(entry):
            return
        entry.message = error
        await self._unfinished(entry)
        await self.finish(entry, JobStatus.FAILED, "job_failed", job_fields={"error": error})

    async def cancelled(self, entry: JobEntry) -> None:
        if not self.holds(entry):
            return
        entry.message = "cancelled"
        await self._unfinished(entry)
        await self.finish(entry, JobStatus.CANCELLED, "job_cancelled")

    async def _unfinished(self, entry: JobEntry) -> None:
        if self._on_unfinished is not None:
            await self._on_unfinished(entry)

    async def finish(
        self,
        entry: JobEntry,
        status: JobStatus,
        event: str,
        job_fields: dict[str, Any] | None = None,
        asset_fields: dict[str, Any] | None = None,
    ) -> None:
        if not self.holds(entry):
            return  # finished already, by another path, or dropped
        self.book.remove(entry.id)
        self._remember_finished(entry.id)
        self.close_stage(entry)
        job_fields = {
            "stage": entry.stage.value,
            "progress": entry.progress,
            "message": entry.message,
            "timings": entry.timings,
            **(job_fields or {}),
        }
        try:
            finished = await self.writer.finish(
                entry.id, entry.claim, status, job_fields, asset_fields or {}
            )
        except BaseException:
            self._finished.pop(entry.id, None)  # still active in the database: adopt it again
            raise
        if not finished:  # ended by another path, or its claim went to another queue: that
            self._finished.pop(entry.id, None)  # one announces it; a reconcile may adopt it
            self.publish_queue()
            return
        if finished.webhook_id and self.webhooks is not None:
            self.webhooks.schedule(finished.webhook_id)
        self.metrics.record_finished(status.value)
        # The validation report stays out of the feed: it is long, and a GET away.
        shown = {k: v for k, v in (asset_fields or {}).items() if k != "validation"}
        payload: dict[str, Any] = {"asset": shown} if shown else {}
        if status is JobStatus.FAILED:
            payload["error"] = entry.message
        self.publish(event, entry, status=status, **payload)
        self.publish_queue()

    def _remember_finished(self, job_id: str) -> None:
        self._finished[job_id] = None
        if len(self._finished) > FINISHED_MEMORY:
            del self._finished[next(iter(self._finished))]

    # --- announcing ---------------------------------------------------------------------

    def publish(
        self, type_: str, entry: JobEntry, status: JobStatus | None = None, **extra: Any
    ) -> Event:
        return self.events.publish(type_, **entry_view(entry, status), **extra)

    def publish_queue(self) -> None:
        self.events.publish("queue_status", **self._queue_status())
        self.record_queue()

    def record_queue(self) -> None:
        active = {s.value: 0 for s in (JobStatus.PENDING, JobStatus.PROCESSING)}
        for entry in self.book.entries():
            active[entry.stage.status.value] += 1
        self.metrics.record_queue(self.book.depth(), active)
