"""What the job coordinator's pieces share: the queue's settings and its collaborators
(`coordinator` builds them once)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sweedle_core.jobs.book import JobBook
from sweedle_core.jobs.files import JobFiles
from sweedle_core.jobs.generators import GeneratorRegistry
from sweedle_core.jobs.gpu_line import GpuLine
from sweedle_core.jobs.holds import QueueHolds
from sweedle_core.jobs.lane import PoolLane
from sweedle_core.jobs.ledger import JobLedger
from sweedle_core.jobs.tasks import BackgroundTasks
from sweedle_core.jobs.writer import JobWriter


class QueueSettings(Protocol):
    """The queue's settings (the `JobCoordinator`'s attributes), read where they are used: a
    change made while the queue runs counts from then on."""

    preprocess_concurrency: int
    lease_s: float  # how long a generator may stay silent before its job goes to another
    reconcile_s: float
    stage_attempts: int
    retry_backoff_s: float


@dataclass(frozen=True)
class QueueParts:
    """Each is used through its own methods; none keeps state for another."""

    settings: QueueSettings
    book: JobBook
    ledger: JobLedger
    writer: JobWriter
    holds: QueueHolds
    generators: GeneratorRegistry
    tasks: BackgroundTasks
    files: JobFiles
    exports: PoolLane  # generated jobs waiting for the CPU pool, highest priority first
    gpu: GpuLine
