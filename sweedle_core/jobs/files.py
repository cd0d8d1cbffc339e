"""What active jobs keep in the file store, seen from the queue: whether a job's GPU hand-off is
stored, removing the shape of a job that ends without its CPU stage, and sweeping the files of
deleted assets and abandoned uploads. Owned by one event loop; not thread-safe."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sweedle_core.asset_removal import sweep_removals
from sweedle_core.db.models import GenerationJob
from sweedle_core.db.store import Store
from sweedle_core.errors import SweedleError
from sweedle_core.jobs.book import JobEntry
from sweedle_core.jobs.tasks import BackgroundTasks
from sweedle_core.storage import Storage
from sweedle_core.storage.layout import raw_mesh_key, shape_key

log = logging.getLogger(__name__)
LOOK_S = 10.0  # how long a rebuild waits on the store for one job before redoing its work
DROP_WAIT_S = 5.0  # how long ending a job waits for its shape's removal


class JobFiles:
    def __init__(self, store: Store, storage: Storage, tasks: BackgroundTasks) -> None:
        self.store = store
        self.storage = storage
        self.tasks = tasks
        self._sweeping: asyncio.Task[Any] | None = None

    async def has_hand_off(self, row: GenerationJob) -> bool:
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

    async def drop_shape(self, entry: JobEntry) -> None:
        """Remove the shape of a job that ends without its CPU stage (it can be hundreds of
        MB). Best effort: waited for a few seconds at most, then left to finish in the
        background; one left behind goes with the asset's folder."""

        async def drop() -> None:
            try:
                await asyncio.to_thread(self.storage.delete, shape_key(entry.asset_id))
            except Exception as exc:  # a store outage must not fail anything here
                log.warning("job %s: could not remove its shape (%r)", entry.id, exc)

        task = self.tasks.spawn(drop())
        if task is not None:
            await asyncio.wait([task], timeout=DROP_WAIT_S)

    def sweep(self) -> None:
        """Finish removals of files (deleted assets, abandoned uploads) in the background, one
        sweep at a time, so a slow store never holds up the watchdog."""
        if self._sweeping is None or self._sweeping.done():
            self._sweeping = self.tasks.spawn(sweep_removals(self.store, self.storage))
