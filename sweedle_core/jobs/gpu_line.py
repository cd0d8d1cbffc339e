"""The line of jobs waiting for a generator.

Generators pull their jobs: a claim waits here until a job is ready for a GPU (prepared, put
back after a lost or stopped generator, or sent back to be painted), highest priority first.
Jobs in line fail at once when every generator replica there is says it cannot run. Owned by
one event loop; not thread-safe.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sweedle_core.jobs.book import JobBook, JobEntry
from sweedle_core.jobs.generators import GeneratorRegistry
from sweedle_core.jobs.ledger import JobLedger
from sweedle_core.jobs.states import JobStage


class GpuLine:
    def __init__(self, book: JobBook, ledger: JobLedger, generators: GeneratorRegistry) -> None:
        self.book = book
        self.ledger = ledger
        self.generators = generators
        self._ready = asyncio.Condition()
        self._leaving: set[str] = set()  # generators being stopped: they take no more jobs

    async def next_job(self, worker: str, deadline: float) -> JobEntry | None:
        """The first job waiting for a generator, taken out of line for ``worker``; None at
        ``deadline`` (a `time.monotonic` instant) or once the worker is leaving."""
        async with self._ready:
            while worker not in self._leaving:
                entry = self.book.pop(JobStage.WAITING_FOR_GPU)
                remaining = deadline - time.monotonic()
                if entry is not None or remaining <= 0:
                    return entry
                try:
                    await asyncio.wait_for(self._ready.wait(), remaining)
                except asyncio.TimeoutError:
                    return None
        return None

    async def leave(self, worker: str) -> None:
        """``worker`` is being stopped: its claims end at once, with no job."""
        self._leaving.add(worker)
        await self.wake()

    def left(self, worker: str) -> None:
        """``worker`` stopped: nothing more to remember of it."""
        self._leaving.discard(worker)

    async def wake(self) -> None:
        """A job joined the line: the generators waiting for one look again."""
        async with self._ready:
            self._ready.notify_all()

    async def requeue(self, entry: JobEntry, message: str, **fields: Any) -> None:
        entry.worker = None
        await self.ledger.enter(entry, JobStage.WAITING_FOR_GPU, 1.0, message, **fields)
        await self.wake()

    async def fail_if_no_generator(self) -> None:
        """Fail the jobs waiting for a generator when every generator replica there is says it
        cannot run (weights or libraries missing): they would wait forever otherwise.

        With no replica at all (still pending, e.g. waiting for a GPU node) jobs keep waiting.
        """
        reasons = self.generators.unavailable_reasons()
        if reasons is None:
            return
        for entry in self.book.entries():
            if entry.stage is JobStage.WAITING_FOR_GPU and not entry.cancel_requested:
                await self.ledger.failed(entry, f"generation unavailable: {reasons}")
