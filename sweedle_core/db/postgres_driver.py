"""PostgreSQL through asyncpg, with the pool's ping in one trip to the server.

The pool pings every connection it hands out (``pool_pre_ping``), so a connection the server
dropped is replaced before a request uses it. SQLAlchemy's asyncpg adapter sends that ping in a
transaction of its own: BEGIN, an empty statement, ROLLBACK, three trips, so that behind
PgBouncer in transaction mode it reaches the server the connection holds. Connected to
PostgreSQL itself, the empty statement alone says whether the connection is alive: two trips
fewer for each request (a library page makes four in all: the ping and three statements).

`DRIVER` is SQLAlchemy's own asyncpg adapter with its connections' ping so changed; it is handed
to the engine as its DBAPI module (`engine.make_engine`) where prepared statements are on, that
is, where no PgBouncer in transaction mode stands between (`engine.DatabaseOptions`).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import (
    AsyncAdapt_asyncpg_connection,
    AsyncAdapt_asyncpg_dbapi,
)


class _Connection(AsyncAdapt_asyncpg_connection):
    """The adapter's connection, pinged by an empty statement alone."""

    __slots__ = ()

    async def _async_ping(self) -> None:
        # The adapter's `ping` calls this and turns asyncpg's errors into the DBAPI's, by which
        # the pool tells a dead connection (replaced) from another failure.
        await self._connection.fetchrow(";")


class _Driver(AsyncAdapt_asyncpg_dbapi):
    def connect(self, *args: Any, **kwargs: Any) -> _Connection:
        connection = super().connect(*args, **kwargs)
        # The adapter builds its own connection class; the same object, with the ping above.
        connection.__class__ = _Connection
        return connection


DRIVER = _Driver(asyncpg)
