"""The JSON body of a webhook: which job ended, how, and where its asset can be fetched.

It is composed in the transaction that finishes the job (`Store.finish_job`) and frozen in the
delivery's row; the dispatcher sends the stored body and never builds one.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sweedle_core.db.models import Asset, GenerationJob, as_utc, utcnow

# A job's final status -> the event announced for it (also sent as X-Sweedle-Event).
EVENTS = {
    "completed": "job.completed",
    "failed": "job.failed",
    "cancelled": "job.cancelled",
}


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return as_utc(moment).astimezone(timezone.utc).isoformat()


def webhook_payload(
    status: str,
    job: GenerationJob,
    asset: Asset,
    delivery_id: str,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The body announcing that ``job`` ended with ``status`` (completed, failed or cancelled).

    ``job`` and ``asset`` are the rows with their final state already applied. ``delivery_id``
    is the delivery's id, repeated in the body so a receiver that only keeps bodies can still
    drop duplicates. Plain JSON types only: the dict is stored in a JSON column and sent as is.
    """
    status = getattr(status, "value", status)  # a JobStatus works too
    if status not in EVENTS:
        raise ValueError(f"no webhook event for job status {status!r}; one of {sorted(EVENTS)}")
    completed = status == "completed"
    root = job.root_path or ""
    return {
        "id": delivery_id,
        "event": EVENTS[status],
        "created_at": _iso(now or utcnow()),
        "job": {
            "id": job.id,
            # The status being announced, not whatever the row says, so body and event agree.
            "status": status,
            "stage": job.stage,
            "error": job.error,
            "priority": job.priority,
            "created_at": _iso(job.created_at),
            "completed_at": _iso(job.completed_at),
        },
        "asset": {
            "id": asset.id,
            "name": asset.name,
            "status": asset.status,
            "source_type": asset.source_type,
            "vertex_count": asset.vertex_count,
            "face_count": asset.face_count,
            # Paths, not absolute URLs: the service does not know the address it is reached by.
            # They start with the path the job's request came in under (a route_prefix).
            "download_url": f"{root}/api/assets/{asset.id}/download" if completed else None,
            "thumbnail_url": f"{root}/api/assets/{asset.id}/thumbnail" if completed else None,
        },
    }
