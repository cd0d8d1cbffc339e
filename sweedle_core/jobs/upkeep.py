"""The job queue's watchdog: on every pass it puts back the jobs whose generator went silent,
renews the leases of the jobs this queue holds (dropping those another queue took, cancelling
those a user asked another queue to cancel) and, less often, adopts the jobs nobody holds and
sweeps the files of removed assets. Owned by one event loop; not thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sweedle_core.errors import JobFinished
from sweedle_core.jobs.cpu_stages import CpuStages
from sweedle_core.jobs.parts import QueueParts
from sweedle_core.jobs.roster import JobRoster
from sweedle_core.jobs.worker_desk import WorkerDesk

log = logging.getLogger(__name__)


class QueueUpkeep:
    def __init__(
        self,
        parts: QueueParts,
        roster: JobRoster,
        cpu: CpuStages,
        desk: WorkerDesk,
        cancel: Callable[[str], Awaitable[Any]],
    ) -> None:
        """``cancel``: the queue's own cancel (`JobCoordinator.cancel`)."""
        self._parts = parts
        self._roster = roster
        self._cpu = cpu
        self._desk = desk
        self._cancel = cancel

    def start(self) -> None:
        """Start the watchdog, and a first sweep of files."""
        self._parts.tasks.spawn(self._watchdog())
        self._parts.files.sweep()

    async def _watchdog(self) -> None:
        """Put back jobs whose generator went silent, renew the leases of the rest, and adopt
        jobs nobody holds (a submit lost on the way, a queue gone silent)."""
        settings = self._parts.settings
        last_reconcile = time.monotonic()
        while True:
            await asyncio.sleep(min(settings.lease_s / 4, settings.reconcile_s))
            now = time.monotonic()
            try:
                await self._desk.requeue_silent(now)
                await self._renew()
                if now - last_reconcile >= settings.reconcile_s:
                    last_reconcile = now
                    await self._reconcile()
            except Exception:  # a database hiccup must not end the watchdog for good
                log.exception("job watchdog pass failed; the next pass tries again")

    async def _renew(self) -> None:
        """Extend the leases of every job this queue holds (those with a generator: while its
        heartbeat comes, see `WorkerDesk.requeue_silent`); drop the jobs another queue took, and
        cancel those a user asked another queue to cancel."""
        entries = self._parts.book.entries()
        renewal = await self._parts.holds.renew([entry.id for entry in entries])
        for entry in entries:
            if self._parts.book.get(entry.id) is not entry:
                continue  # ended or dropped while the leases were renewed
            if entry.id not in renewal.held:
                self._roster.lose(entry)
            elif entry.id in renewal.cancel_requested and not entry.cancel_requested:
                try:
                    await self._cancel(entry.id)
                except JobFinished:
                    pass

    async def _reconcile(self) -> None:
        """Adopt the jobs nobody holds: a submit lost on the way, a queue gone silent."""
        for row in await self._parts.holds.adopt_free():
            if (stale := self._parts.book.get(row.id)) is not None:
                # Its lease ran out here (a stalled loop): redo in-flight work.
                self._roster.lose(stale)
            if not self._parts.ledger.finished_lately(row.id):
                await self._roster.adopt(row, resume=False)
        self._cpu.pump()
        self._parts.files.sweep()
