"""Requests per key per minute, counted in the database: a key's limit holds for the whole app,
whichever ingress replica a request reaches.

Each request of a key with a limit counts itself in its key's row for the current minute of the
clock, with one upsert that counts only while that minute is under the limit (``ON CONFLICT DO
UPDATE ... WHERE count < limit``, on PostgreSQL and SQLite alike): racing replicas admit
exactly the limit in a minute. A key may send its whole limit at the end of one minute and
again at the start of the next; each replica's token bucket (`RequestLimiter`), checked first,
spreads a burst out over the minute.
"""

from __future__ import annotations

import math
import time

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import async_sessionmaker

from sweedle_core.db.models import RequestCount
from sweedle_core.errors import RateLimited


class RequestCounts:
    def __init__(self, sessions: async_sessionmaker, dialect: str) -> None:
        self.sessions = sessions
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self._pruned_minute = 0

    async def count(self, name: str, per_minute: int, now: float | None = None) -> None:
        """Count one request of the key ``name``; `RateLimited` (nothing counted) when the key
        has had ``per_minute`` requests in this minute already."""
        now = time.time() if now is None else now
        minute = int(now // 60)
        statement = (
            self._insert(RequestCount)
            .values(key_name=name, minute=minute, count=1)
            .on_conflict_do_update(
                index_elements=["key_name", "minute"],
                set_={"count": RequestCount.count + 1},
                where=RequestCount.count < per_minute,
            )
            .returning(RequestCount.count)
        )
        async with self.sessions.begin() as session:
            counted = (await session.execute(statement)).first()
            if minute != self._pruned_minute:  # once a minute per replica: drop past minutes
                self._pruned_minute = minute
                await session.execute(delete(RequestCount).where(RequestCount.minute < minute - 1))
        if counted is None:
            retry_after = max(1, math.ceil(60 - now % 60))
            raise RateLimited(
                f"the key {name!r} is over its limit of {per_minute} requests per minute; "
                f"retry in {retry_after} s",
                retry_after,
            )
