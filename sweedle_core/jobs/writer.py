"""The job queue's database writer: one FIFO of writes, run one at a time.

Every database write of the queue goes through one writer, so the database sees changes in the
order they happened, and a caller that need not wait for its write does not. Owned by one event
loop; not thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sweedle_core.db.store import Store

log = logging.getLogger(__name__)


def _log_write_error(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("a database write failed", exc_info=future.exception())


class JobWriter:
    """Writes to the store in the order they were asked for."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._writes: asyncio.Queue[tuple[Callable[[], Awaitable[Any]], asyncio.Future[Any]]] = (
            asyncio.Queue()
        )
        self._writer: asyncio.Task[None] | None = None

    async def flush(self) -> None:
        """Wait until every write asked for so far is in the database."""
        if self._writer is not None:
            await asyncio.shield(self._writer)

    async def write(self, job_id: str, **fields: Any) -> None:
        """Write fields of a job and wait until they are in the database."""
        await self.queued(lambda: self.store.update_job(job_id, **fields))

    def write_later(self, job_id: str, **fields: Any) -> None:
        """Write fields of a job without waiting: a crash before it lands loses only a step of
        progress or a claim, which the rebuild from the database redoes."""
        future = self.queued(lambda: self.store.update_job(job_id, **fields))
        future.add_done_callback(_log_write_error)

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
