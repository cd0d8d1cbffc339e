"""Job status and stage values, and how one implies the other."""

from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE = frozenset({JobStatus.PENDING, JobStatus.PROCESSING})


class JobStage(str, Enum):
    QUEUED = "queued"
    PREPROCESSING = "preprocessing"
    WAITING_FOR_GPU = "waiting_for_gpu"
    GENERATING = "generating"
    EXPORTING = "exporting"

    @property
    def status(self) -> JobStatus:
        """The status an active job has while in this stage."""
        return JobStatus.PENDING if self in _WAITING else JobStatus.PROCESSING

    @property
    def progress_span(self) -> tuple[float, float]:
        """The share of the job's overall progress this stage covers."""
        return _SPANS[self]


_WAITING = frozenset({JobStage.QUEUED, JobStage.WAITING_FOR_GPU})
_SPANS = {
    JobStage.QUEUED: (0.0, 0.0),
    JobStage.PREPROCESSING: (0.0, 0.1),
    JobStage.WAITING_FOR_GPU: (0.1, 0.1),
    JobStage.GENERATING: (0.1, 0.85),
    JobStage.EXPORTING: (0.85, 1.0),
}


def overall_progress(stage: JobStage, fraction: float) -> float:
    """Map a stage's own progress in [0, 1] onto the job's progress in [0, 1]."""
    start, end = stage.progress_span
    return round(start + (end - start) * min(max(fraction, 0.0), 1.0), 4)
