"""Which jobs are this queue's: a database row it adopts becomes an active entry, and an entry
whose claim went to another queue (or whose job ended elsewhere) is dropped here. Owned by one
event loop; not thread-safe."""

from __future__ import annotations

import logging

from sweedle_core.db.models import GenerationJob
from sweedle_core.jobs.book import JobEntry
from sweedle_core.jobs.cpu_stages import CpuStages
from sweedle_core.jobs.parts import QueueParts
from sweedle_core.jobs.resume import resumed_entry
from sweedle_core.jobs.states import JobStage

log = logging.getLogger(__name__)


class JobRoster:
    def __init__(self, parts: QueueParts, cpu: CpuStages) -> None:
        self._parts = parts
        self._cpu = cpu

    async def adopt(self, row: GenerationJob, resume: bool) -> JobEntry:
        """Make a database row an active entry; on ``resume`` put in-flight work back in line."""
        existing = self._parts.book.get(row.id)
        if existing is not None:
            return existing  # adopted while the caller read the row (submit vs. reconcile)
        stage = JobStage(row.stage)
        stored = stage is JobStage.EXPORTING and await self._parts.files.has_hand_off(row)
        if (existing := self._parts.book.get(row.id)) is not None:
            return existing  # adopted by another caller while the store was asked
        entry = resumed_entry(row, stored)
        self._parts.book.add(entry)
        if entry.stage is not stage:
            await self._parts.writer.write(
                entry.id, entry.claim, stage=entry.stage.value, status=entry.stage.status.value
            )
        if not resume:
            self._parts.ledger.publish("job_created", entry)
        if entry.cancel_requested and entry.stage in (
            JobStage.QUEUED,
            JobStage.WAITING_FOR_GPU,
            JobStage.EXPORTING,
        ):
            # Its work stopped with the old queue: nothing to redo.
            await self._parts.ledger.cancelled(entry)
            return entry
        if entry.stage is JobStage.EXPORTING:
            self._cpu.queue_export(entry)
        if entry.stage is JobStage.WAITING_FOR_GPU:
            await self._parts.gpu.wake()
        self._parts.ledger.publish_queue()
        return entry

    def refused(self, job_id: str, claim: int) -> None:
        """The database refused a write made under ``claim``: the job ended or is another's."""
        entry = self._parts.book.get(job_id)
        if entry is not None and entry.claim == claim:
            self.lose(entry)

    def lose(self, entry: JobEntry) -> None:
        """Forget a job whose claim is no longer this queue's; its workers are told to stop at
        their next report. Its holder now runs it and announces its end."""
        if self._parts.book.get(entry.id) is not entry:
            return
        self._parts.book.remove(entry.id)
        self._parts.exports.discard(entry.id)
        self._parts.writer.forget(entry.id)
        log.warning("job %s: its claim is no longer this queue's; dropped here", entry.id)
        self._parts.ledger.publish_queue()
