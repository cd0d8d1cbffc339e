"""The one shape a job has outside the queue: in API replies and in progress events.

Built from the queue's memory for an active job, or from its database row for a finished one,
so a client sees the same fields either way.
"""

from __future__ import annotations

from typing import Any

from sweedle_core.db.models import GenerationJob
from sweedle_core.jobs.book import JobEntry
from sweedle_core.jobs.states import JobStatus


def entry_view(entry: JobEntry, status: JobStatus | None = None) -> dict[str, Any]:
    """An active job; ``status`` overrides the one its stage implies (a job just finished)."""
    return {
        "job_id": entry.id,
        "asset_id": entry.asset_id,
        "status": (status or entry.stage.status).value,
        "stage": entry.stage.value,
        "progress": entry.progress,
        "priority": entry.priority.value,
        "message": entry.message,
        "cancel_requested": entry.cancel_requested,
        "owner": entry.owner,
    }


def row_view(row: GenerationJob) -> dict[str, Any]:
    return {
        "job_id": row.id,
        "asset_id": row.asset_id,
        "status": row.status,
        "stage": row.stage,
        "progress": row.progress,
        "priority": row.priority,
        "message": row.message or "",
        "cancel_requested": False,
        "owner": row.owner,
    }


def status_view(status: dict[str, Any], sees: str | None) -> dict[str, Any]:
    """The queue's status as a caller may see it: a key that sees only its own jobs (``sees``
    set) sees the others' work as counts: the generators' states without the ids of the
    jobs they run. None: everything (an admin key, or a service without keys)."""
    if sees is None:
        return status
    generators = {
        name: {key: value for key, value in info.items() if key != "job_id"}
        for name, info in status.get("generators", {}).items()
    }
    return {**status, "generators": generators}
