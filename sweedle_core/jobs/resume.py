"""Where a job read from the database takes up again in the queue's memory.

The queue is a cache of the database: at start, and whenever it meets an active job it never
heard of (a submit lost on the way, a cancel of a job it does not hold), it rebuilds the job's
entry from its row. Work that was in flight when the old queue stopped is redone from its input.
"""

from __future__ import annotations

import time
from datetime import timezone

from sweedle_core.db.models import GenerationJob, as_utc
from sweedle_core.jobs.book import JobEntry
from sweedle_core.jobs.states import JobStage
from sweedle_core.params import Priority

# Where a job found in the database at start resumes: work in flight is redone from its input.
_RESUME = {
    JobStage.QUEUED: JobStage.QUEUED,
    JobStage.PREPROCESSING: JobStage.QUEUED,
    JobStage.WAITING_FOR_GPU: JobStage.WAITING_FOR_GPU,
    JobStage.GENERATING: JobStage.WAITING_FOR_GPU,
    JobStage.EXPORTING: JobStage.EXPORTING,
}


def resumed_entry(row: GenerationJob, hand_off_stored: bool) -> JobEntry:
    """The active entry for ``row``, at the stage its work takes up again; an export resumes
    only if the generator's shape (or the mesh made from it) is in the store."""
    entry = JobEntry(
        id=row.id,
        asset_id=row.asset_id,
        priority=Priority(row.priority),
        created_at=as_utc(row.created_at).astimezone(timezone.utc).timestamp(),
        params=dict(row.params),
        input_path=row.asset.input_path or "",
        prompt=row.asset.prompt,
        views=dict(row.asset.input_views or {}),
        owner=row.owner,
        stage=_RESUME.get(JobStage(row.stage), JobStage.QUEUED),
        timings=dict(row.timings or {}),
        attempts=row.attempts,
        retries=dict(row.retries or {}),
        stage_started=time.monotonic(),
        cancel_requested=row.cancel_requested,
        claim=row.claim,
    )
    if entry.stage is JobStage.EXPORTING and not hand_off_stored:
        entry.stage = JobStage.WAITING_FOR_GPU  # nothing to finish: generate it again
    return entry
