"""A bounded lane to a worker pool: jobs wait in priority order for one of a fixed number of
slots (what the pool's replicas can run at once), so a HIGH job overtakes waiting NORMAL ones
at the pool as it does in the queue. Owned by one event loop; not thread-safe."""

from __future__ import annotations

import heapq
import itertools

from sweedle_core.jobs.book import JobEntry


class PoolLane:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.running = 0
        self._heap: list[tuple[int, float, int, str]] = []
        self._waiting: dict[str, JobEntry] = {}
        self._tiebreak = itertools.count()

    def __contains__(self, job_id: object) -> bool:
        """Whether the job waits for a slot (not yet sent to the pool)."""
        return job_id in self._waiting

    def __len__(self) -> int:
        return len(self._waiting)

    def push(self, entry: JobEntry) -> None:
        if entry.id in self._waiting:
            return
        self._waiting[entry.id] = entry
        key = (entry.priority.rank, entry.created_at, next(self._tiebreak), entry.id)
        heapq.heappush(self._heap, key)

    def discard(self, job_id: str) -> None:
        """Forget a waiting job (cancelled); its heap item is skipped when reached."""
        self._waiting.pop(job_id, None)

    def take(self) -> JobEntry | None:
        """The first waiting job if a slot is free (the slot is then its own until `done`)."""
        if self.running >= self.slots:
            return None
        while self._heap:
            *_, job_id = heapq.heappop(self._heap)
            entry = self._waiting.pop(job_id, None)
            if entry is not None:
                self.running += 1
                return entry
        return None

    def done(self) -> None:
        """A job sent to the pool has left it: its slot is free."""
        self.running -= 1
