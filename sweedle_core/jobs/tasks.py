"""The job queue's background tasks: each kept until it ends, its failure logged, and all of
them cancelled when the queue stops. Owned by one event loop; not thread-safe."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class BackgroundTasks:
    def __init__(self) -> None:
        self.running: set[asyncio.Task[Any]] = set()
        self._stopping = False

    @property
    def stopping(self) -> bool:
        """Whether the queue is stopping: no task starts any more."""
        return self._stopping

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any] | None:
        if self._stopping:
            coro.close()
            return None
        task = asyncio.get_running_loop().create_task(coro)
        self.running.add(task)
        task.add_done_callback(self._task_done)
        return task

    async def stop(self) -> None:
        """Cancel every task and wait until they have ended."""
        # A task ending now must not start another (`CpuStages` pumps in its `finally`).
        self._stopping = True
        for task in list(self.running):
            task.cancel()
        await asyncio.gather(*self.running, return_exceptions=True)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("job coordinator task failed", exc_info=task.exception())
