"""Webhook delivery rows: made with the job's final state, then one log entry per attempt.

The database is the delivery's memory: a delivery is ``pending`` until an attempt gets a 2xx
answer (``delivered``) or the attempts run out (``failed``), and a pending row says when it is
next due, so a restarted dispatcher picks up exactly where the last one stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from sweedle_core.db.models import GenerationJob, WebhookDelivery, as_utc, utcnow

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"

# Bounds what a misbehaving receiver (or a long exception message) can write into the log.
MAX_ERROR_CHARS = 500


def new_delivery(
    delivery_id: str,
    job: GenerationJob,
    payload: dict[str, Any],
    *,
    url: str | None = None,
) -> WebhookDelivery:
    """A pending delivery of ``payload`` to ``url`` (default: the job's ``webhook_url``).

    Not added to any session: the caller adds it in the transaction that finishes the job, so a
    job never ends without its announcement being recorded. The event is the payload's.
    """
    target = url or job.webhook_url
    if not target:
        raise ValueError(f"job {job.id} has no webhook_url to deliver to")
    return WebhookDelivery(
        id=delivery_id,
        job_id=job.id,
        url=target,
        event=payload["event"],
        payload=payload,
        status=PENDING,
        attempts=0,
        log=[],
    )


def seconds_until_due(delivery: WebhookDelivery, now: datetime) -> float:
    """How long a pending delivery waits before its next attempt; 0 when it is due."""
    if delivery.next_attempt_at is None:
        return 0.0
    return max(0.0, (as_utc(delivery.next_attempt_at) - now).total_seconds())


class WebhookDeliveries:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self.sessions = sessions

    async def pending(self) -> list[WebhookDelivery]:
        """Every delivery with attempts left, oldest first."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.status == PENDING)
                .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
            )
            return list(rows.all())

    async def get(self, delivery_id: str) -> WebhookDelivery | None:
        """The delivery, or None once it is gone (deleted with its job's asset)."""
        async with self.sessions() as session:
            return await session.get(WebhookDelivery, delivery_id)

    async def record_attempt(
        self,
        delivery_id: str,
        *,
        status_code: int | None,
        error: str | None,
        duration_ms: float,
        max_attempts: int,
        backoff: Callable[[int], float],
        now: datetime | None = None,
    ) -> WebhookDelivery | None:
        """Log one attempt and decide what comes next, in one transaction.

        A 2xx ``status_code`` delivers it; otherwise it fails once ``max_attempts`` are used, or
        waits ``backoff(attempts)`` seconds for the next one. Returns the updated row, or None
        when the row is gone (its asset was deleted meanwhile): there is nothing left to deliver.
        """
        now = now or utcnow()
        if error is not None:
            error = error[:MAX_ERROR_CHARS]
        async with self.sessions.begin() as session:
            # FOR UPDATE on PostgreSQL (SQLite ignores it and locks the file on write anyway).
            delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
            if delivery is None:
                return None
            attempt = delivery.attempts + 1
            entry = {
                "attempt": attempt,
                "at": now.isoformat(),
                "status_code": status_code,
                "error": error,
                "duration_ms": round(duration_ms, 1),
            }
            # A new list: a JSON column does not notice a list changed in place.
            delivery.log = [*(delivery.log or []), entry]
            delivery.attempts = attempt
            delivery.last_status_code = status_code
            delivery.last_error = error
            delivery.updated_at = now
            if delivery.status != PENDING:
                # Another dispatcher settled it while this attempt was in flight: the attempt
                # is logged, the outcome already known stays.
                return delivery
            if status_code is not None and 200 <= status_code < 300:
                delivery.status, delivery.next_attempt_at = DELIVERED, None
            elif attempt >= max_attempts:
                delivery.status, delivery.next_attempt_at = FAILED, None
            else:
                delivery.next_attempt_at = now + timedelta(seconds=backoff(attempt))
        return delivery
