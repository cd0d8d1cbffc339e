"""The job queue's database writer: one FIFO of writes, run one at a time.

Every database write of the queue goes through one writer, so the database sees changes in the
order they happened, and a caller that need not wait for its write does not. A write names the
claim the queue holds the job under; one the database refuses (the claim is no longer current,
or the job has ended) is reported to ``on_refused``.

Progress is coalesced (`write_progress`): at most one progress write per job every
``progress_every_s`` reaches the database, carrying the latest report; a state change or a final
state is always written, at once, and supersedes progress held back. Owned by one event loop;
not thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sweedle_core.db.store import JobFinishOutcome, Store
from sweedle_core.jobs.states import JobStatus

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 0.5  # at most this often a job's progress is written


@dataclass
class _HeldProgress:
    """A job's latest progress, held back until its next write is due."""

    claim: int
    fields: dict[str, Any]
    timer: asyncio.TimerHandle


def _log_write_error(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("a database write failed", exc_info=future.exception())


class JobWriter:
    """Writes to the store in the order they were asked for."""

    def __init__(
        self,
        store: Store,
        on_refused: Callable[[str, int], None] | None = None,
        progress_every_s: float = PROGRESS_EVERY_S,
    ) -> None:
        self.store = store
        self._on_refused = on_refused
        self._progress_every_s = progress_every_s
        self._progress_due: dict[str, float] = {}  # job -> when its next progress may go
        self._held: dict[str, _HeldProgress] = {}
        self._writes: asyncio.Queue[tuple[Callable[[], Awaitable[Any]], asyncio.Future[Any]]] = (
            asyncio.Queue()
        )
        self._writer: asyncio.Task[None] | None = None

    async def flush(self) -> None:
        """Wait until every write asked for so far is in the database (progress held back
        too)."""
        for job_id in list(self._held):
            self._release(job_id)
        if self._writer is not None:
            await asyncio.shield(self._writer)

    async def write(self, job_id: str, claim: int, **fields: Any) -> bool:
        """Write fields of a job held under ``claim``; waits until they are in the database.
        False when the database refused them."""
        self._supersede(job_id)
        return bool(await self.queued(lambda: self._update(job_id, claim, fields)))

    def write_later(self, job_id: str, claim: int, **fields: Any) -> None:
        """Write fields of a job without waiting: a crash before it lands loses only a step of
        progress or a claim, which the rebuild from the database redoes."""
        self._supersede(job_id)
        self._queue_later(job_id, claim, fields)

    async def finish(
        self,
        job_id: str,
        claim: int,
        status: JobStatus,
        job_fields: dict[str, Any],
        asset_fields: dict[str, Any],
    ) -> JobFinishOutcome:
        """Record a job's final state (`Store.finish_job`) after every write before it."""
        self.forget(job_id)
        return await self.queued(
            lambda: self.store.finish_job(job_id, claim, status, job_fields, asset_fields)
        )

    def write_progress(self, job_id: str, claim: int, **fields: Any) -> None:
        """Write a job's progress, coalesced: now if its last progress write is old enough,
        else held back (the latest report's fields win) until it is due."""
        held = self._held.get(job_id)
        if held is not None:
            held.claim = claim
            held.fields.update(fields)
            return
        loop = asyncio.get_running_loop()
        wait = self._progress_due.get(job_id, 0.0) - loop.time()
        if wait <= 0:
            self._progress_due[job_id] = loop.time() + self._progress_every_s
            self._queue_later(job_id, claim, fields)
            return
        timer = loop.call_later(wait, self._release, job_id)
        self._held[job_id] = _HeldProgress(claim, dict(fields), timer)

    def _release(self, job_id: str) -> None:
        held = self._held.pop(job_id, None)
        if held is not None:
            held.timer.cancel()
            loop = asyncio.get_running_loop()
            self._progress_due[job_id] = loop.time() + self._progress_every_s
            self._queue_later(job_id, held.claim, held.fields)

    def forget(self, job_id: str) -> None:
        """The job has ended here: nothing more of its progress is written."""
        self._supersede(job_id)
        self._progress_due.pop(job_id, None)

    def _supersede(self, job_id: str) -> None:
        """Drop the job's held-back progress: a state change written now replaces it."""
        held = self._held.pop(job_id, None)
        if held is not None:
            held.timer.cancel()

    def _queue_later(self, job_id: str, claim: int, fields: dict[str, Any]) -> None:
        future = self.queued(lambda: self._update(job_id, claim, fields))
        future.add_done_callback(_log_write_error)

    async def _update(self, job_id: str, claim: int, fields: dict[str, Any]) -> bool:
        written = await self.store.update_job(job_id, claim, **fields)
        if not written and self._on_refused is not None:
            self._on_refused(job_id, claim)
        return written

    def queued(self, write: Callable[[], Awaitable[Any]]) -> asyncio.Future[Any]:
        """Run ``write`` after every write asked for before it; the future holds its result."""
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
