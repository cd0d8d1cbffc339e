"""Per-key limits: requests per minute (a token bucket per key) and jobs waiting at once.

Both answer with `RateLimited`, whose ``retry_after`` the ingress sends as Retry-After. The
limiter lives in one event loop (the ingress replica), so it takes no lock; each replica keeps
its own buckets, and the count in the database (`sweedle_core/db/request_counts.py`) holds
the limit for the whole app.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sweedle_core.errors import RateLimited

# A bucket idle this long has refilled completely, and a full bucket is the same as none: it is
# dropped without changing any answer.
_FULL_AFTER_S = 60.0
# Buckets kept before idle ones are dropped; keys are configured, so this is rarely reached.
MAX_BUCKETS = 10_000
# Waiting jobs do not start on a clock, so this is a polite guess at when to ask again.
WAITING_RETRY_AFTER_S = 5


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RequestLimiter:
    """A token bucket per key name: ``per_minute`` requests at once, then one every
    ``60 / per_minute`` seconds."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_buckets: int = MAX_BUCKETS
    ) -> None:
        self._clock = clock
        self._max_buckets = max_buckets
        self._prune_at = max_buckets
        self._buckets: dict[str, _Bucket] = {}

    def check(self, name: str, per_minute: int, now: float | None = None) -> None:
        """Takes a token from ``name``'s bucket, or raises `RateLimited` with the whole seconds
        until one is back. ``per_minute`` 0 is no limit."""
        if per_minute <= 0:
            return
        now = self._clock() if now is None else now
        bucket = self._buckets.get(name)
        if bucket is None:
            if len(self._buckets) >= self._prune_at:
                self._prune(now)
            bucket = self._buckets[name] = _Bucket(float(per_minute), now)
        else:
            # min(): a limit lowered since the last request caps what was saved under the old one.
            refill = max(0.0, now - bucket.at) * per_minute / 60.0
            bucket.tokens = min(float(per_minute), bucket.tokens + refill)
            bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        retry_after = max(1, math.ceil((1.0 - bucket.tokens) * 60.0 / per_minute))
        raise RateLimited(
            f"the key {name!r} is over its limit of {per_minute} requests per minute; "
            f"retry in {retry_after} s",
            retry_after,
        )

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self, now: float) -> None:
        self._buckets = {
            name: bucket
            for name, bucket in self._buckets.items()
            if now - bucket.at < _FULL_AFTER_S
        }
        # When most buckets are busy, wait for the map to double before scanning it again, so a
        # crowd of active keys does not cost a full scan per new key.
        self._prune_at = max(self._max_buckets, 2 * len(self._buckets))


def waiting_jobs_exceeded(
    waiting: int, limit: int, retry_after: int = WAITING_RETRY_AFTER_S
) -> None:
    """Raises `RateLimited` when a key that already has ``waiting`` jobs waiting may not add
    another under ``limit`` (0: no limit). The caller counts the waiting jobs (the database)."""
    if limit > 0 and waiting >= limit:
        raise RateLimited(
            f"{waiting} jobs of this key are waiting to start and the limit is {limit}: "
            "submit more once some have started",
            retry_after,
        )


class FeedSlots:
    """Open progress feeds of one ingress replica: at most ``per_client`` for one caller (a
    key, or an address without keys) and ``total`` in all. Each open WebSocket holds one of the
    replica's request slots for as long as it lives, so without a cap one client's idle
    sockets could take them all and leave every REST call waiting."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total = total
        self.per_client = per_client
        self._open: dict[str, int] = {}

    def take(self, who: str) -> None:
        """Count a new feed for ``who``; `RateLimited` when it would pass a cap."""
        if sum(self._open.values()) >= self.total:
            raise RateLimited(
                f"this server has {self.total} progress feeds open, its most (MAX_FEEDS); "
                "try again shortly",
                WAITING_RETRY_AFTER_S,
            )
        if self._open.get(who, 0) >= self.per_client:
            raise RateLimited(
                f"{who} has {self.per_client} progress feeds open, the most one caller may "
                "(MAX_FEEDS_PER_CLIENT): one feed follows every job of the caller",
                WAITING_RETRY_AFTER_S,
            )
        self._open[who] = self._open.get(who, 0) + 1

    def give_back(self, who: str) -> None:
        left = self._open.get(who, 0) - 1
        if left > 0:
            self._open[who] = left
        else:
            self._open.pop(who, None)
