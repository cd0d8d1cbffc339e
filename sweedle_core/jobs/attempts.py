"""Runs of a job's stage on workers that may die: a stage whose worker is lost runs again, up to
``stage_attempts`` runs in all, each under a claim of its own; the errors a failed stage ends
the job with. Owned by one event loop; not thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sweedle_core.errors import SweedleError, WorkerLost, unwrapped
from sweedle_core.jobs.book import JobEntry
from sweedle_core.jobs.parts import QueueParts
from sweedle_core.jobs.states import JobStage

log = logging.getLogger(__name__)
T = TypeVar("T")


def describe_error(exc: BaseException) -> str:
    """A one-line message for a failed stage, without Ray's wrapping traceback."""
    exc = unwrapped(exc)
    if isinstance(exc, SweedleError):
        return exc.message
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else 'no message'}"


class StageAttempts:
    def __init__(self, parts: QueueParts) -> None:
        self._parts = parts

    async def run(self, entry: JobEntry, stage: JobStage, work: Callable[[], Awaitable[T]]) -> T:
        """``work()``, run again (on whichever replica takes it) while the worker running it
        dies, up to ``stage_attempts`` runs in all; any other error is the job's and raised.
        Each run has a claim of its own, so a worker taken for dead changes nothing if it was
        not; `ClaimLost` when the job is no longer this queue's."""
        settings = self._parts.settings
        while True:
            await self._parts.holds.take(entry)
            try:
                return await work()
            except Exception as exc:
                lost = isinstance(unwrapped(exc), WorkerLost) and not entry.cancel_requested
                attempt = self.next_attempt(entry, stage) if lost else None
                if attempt is None:
                    raise
                log.warning("job %s: %s lost its worker (%s); again", entry.id, stage.value, exc)
                message = f"its worker died ({describe_error(exc)}); attempt {attempt}"
                await self._parts.ledger.enter(
                    entry,
                    stage,
                    0.0,
                    f"{message} of {settings.stage_attempts}",
                    retries=dict(entry.retries),
                )
                # Serve may route to a dead replica for a moment: each try waits longer.
                await asyncio.sleep(settings.retry_backoff_s * 2 ** (attempt - 2))

    def next_attempt(self, entry: JobEntry, stage: JobStage) -> int | None:
        """Count one more run of ``stage`` after a lost worker and return its number, or None
        (nothing counted) when ``stage_attempts`` are used up."""
        runs = entry.retries.get(stage.value, 0) + 1
        if runs >= self._parts.settings.stage_attempts:
            return None
        entry.retries[stage.value] = runs
        return runs + 1

    def failure(self, stage: str, exc: BaseException) -> str:
        """The error of a failed stage: its own, or that every attempt lost its worker."""
        if isinstance(unwrapped(exc), WorkerLost):
            attempts = self._parts.settings.stage_attempts
            return (
                f"{stage} failed: its worker died in each of {attempts} attempts "
                f"(STAGE_MAX_ATTEMPTS); last: {describe_error(exc)}"
            )
        return f"{stage} failed: {describe_error(exc)}"
