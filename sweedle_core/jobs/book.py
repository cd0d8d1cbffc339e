"""The queue's memory: active jobs, in priority order, per waiting stage.

A cache of the database, rebuilt from it at start. Owned by one event loop; not thread-safe.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sweedle_core.jobs.states import JobStage, overall_progress
from sweedle_core.params import Priority

# Stages in which a job waits for a worker, each with its own priority queue.
QUEUED_STAGES = (JobStage.QUEUED, JobStage.WAITING_FOR_GPU)


@dataclass
class JobEntry:
    """What the queue keeps of one active job."""

    id: str
    asset_id: str
    priority: Priority
    created_at: float
    params: dict[str, Any]
    input_path: str
    prompt: str | None = None  # a text-to-3d job: its image is painted from this first
    views: dict[str, str] = field(default_factory=dict)  # other photos: view -> input key
    owner: str | None = None  # the API key (by name) that submitted it
    stage: JobStage = JobStage.QUEUED
    progress: float = 0.0
    message: str = ""
    cancel_requested: bool = False
    worker: str | None = None
    claim: int = 0  # the token the database holds the job under (`sweedle_core/db/claims.py`)
    lease_until: float = 0.0
    stage_started: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    attempts: int = 0
    retries: dict[str, int] = field(default_factory=dict)  # stage -> restarts after a lost worker
    report_seq: int = 0  # the newest generator report shown (see report_progress)
    paint_visits: int = 0  # times sent back to a GPU to be painted (once at most)
    # Where a job sent back to be painted was: its stages' progress runs on above it.
    progress_base: float = 0.0

    def progress_at(self, stage: JobStage, fraction: float) -> float:
        """The job's overall progress at ``fraction`` of ``stage``, above `progress_base`."""
        progress = overall_progress(stage, fraction)
        return round(self.progress_base + (1.0 - self.progress_base) * progress, 4)


class JobBook:
    """Active jobs by id, plus one heap per waiting stage (HIGH, NORMAL, LOW; FIFO within)."""

    def __init__(self) -> None:
        self._jobs: dict[str, JobEntry] = {}
        self._heaps: dict[JobStage, list[tuple[int, float, int, str]]] = {
            stage: [] for stage in QUEUED_STAGES
        }
        self._tiebreak = itertools.count()

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    def __len__(self) -> int:
        return len(self._jobs)

    def get(self, job_id: str) -> JobEntry | None:
        return self._jobs.get(job_id)

    def add(self, entry: JobEntry) -> None:
        self._jobs[entry.id] = entry
        self._push(entry)

    def remove(self, job_id: str) -> JobEntry | None:
        # Heap items of a removed job are skipped lazily by `pop`.
        return self._jobs.pop(job_id, None)

    def move(self, entry: JobEntry, stage: JobStage) -> None:
        entry.stage = stage
        self._push(entry)

    def pop(self, stage: JobStage) -> JobEntry | None:
        """Take the first job waiting in ``stage``, or None when none waits."""
        heap = self._heaps[stage]
        while heap:
            *_, job_id = heapq.heappop(heap)
            entry = self._jobs.get(job_id)
            if entry is not None and entry.stage is stage:
                return entry
        return None

    def waiting(self, stage: JobStage) -> int:
        return sum(1 for e in self._jobs.values() if e.stage is stage)

    def depth(self) -> dict[str, int]:
        """Jobs waiting in either queue, per priority name."""
        counts = Counter(e.priority.value for e in self._jobs.values() if e.stage in QUEUED_STAGES)
        return {p.value: counts.get(p.value, 0) for p in Priority}

    def by_stage(self) -> dict[str, int]:
        counts = Counter(e.stage.value for e in self._jobs.values())
        return {s.value: counts.get(s.value, 0) for s in JobStage}

    def in_order(self) -> list[JobEntry]:
        """Every active job: running ones first, then waiting ones in the order they will run."""
        stage_rank = {
            JobStage.EXPORTING: 0,
            JobStage.GENERATING: 1,
            JobStage.WAITING_FOR_GPU: 2,
            JobStage.PREPROCESSING: 3,
            JobStage.QUEUED: 4,
        }
        return sorted(
            self._jobs.values(),
            key=lambda e: (stage_rank.get(e.stage, 5), e.priority.rank, e.created_at),
        )

    def entries(self) -> list[JobEntry]:
        return list(self._jobs.values())

    def _push(self, entry: JobEntry) -> None:
        if entry.stage in self._heaps:
            key = (entry.priority.rank, entry.created_at, next(self._tiebreak), entry.id)
            heapq.heappush(self._heaps[entry.stage], key)
