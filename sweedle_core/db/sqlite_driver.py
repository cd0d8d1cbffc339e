"""SQLite through aiosqlite, with one trip to the connection's thread per statement.

aiosqlite runs each SQLite connection on a thread of its own; every call is a trip there and
back (a queue put, a thread wake-up, a callback to the event loop: about 0.1 ms on our 2-core
machine). SQLAlchemy's adapter makes four trips per statement (open a cursor, execute, fetch,
close) and one for each rollback, even of a read that began no transaction: twenty-odd trips
for a library page whose SQL takes a fraction of that. Here a statement is executed, fetched
and closed in one trip, and a rollback with no transaction open is not sent.

`DRIVER` is SQLAlchemy's own aiosqlite adapter with its cursor and connection so changed; it is
handed to the engine as its DBAPI module (`engine.make_engine`).
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_


class _Cursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor whose statement runs, is fetched and is closed in one trip to the thread."""

    __slots__ = ("_description", "_rowcount", "_lastrowid", "_arraysize")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No aiosqlite cursor is opened here (a trip): each statement opens its own, there.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1  # a DBAPI cursor's default (rows a fetchmany() takes)

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._run(sqlite3.Cursor.execute, operation, () if parameters is None else parameters)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
        self._run(sqlite3.Cursor.executemany, operation, seq_of_parameters)

    def _run(self, call: Callable[..., Any], operation: Any, parameters: Any) -> None:
        try:
            await_(self._trip(call, operation, parameters))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _trip(self, call: Callable[..., Any], operation: Any, parameters: Any) -> None:
        async with self._adapt_connection._execute_mutex:
            await self._connection._execute(self._statement, call, operation, parameters)

    def _statement(self, call: Callable[..., Any], operation: Any, parameters: Any) -> None:
        """On the connection's thread: the whole statement, its rows kept for the fetches."""
        self._description, self._rows = None, collections.deque()
        cursor = self._connection._conn.cursor()
        try:
            call(cursor, operation, parameters)
            self._description = cursor.description
            if cursor.description:
                self._rows = collections.deque(cursor.fetchall())
            self._rowcount, self._lastrowid = cursor.rowcount, cursor.lastrowid
        finally:
            cursor.close()

    async def _async_soft_close(self) -> None:
        return None  # closed in its trip already

    def close(self) -> None:
        self._rows.clear()


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls: type[AsyncAdapt_aiosqlite_cursor] = _Cursor

    def rollback(self) -> None:
        # A read opens no transaction (SQLite begins one before a write): nothing to undo.
        if self._connection._connection is not None and self._connection.in_transaction:
            super().rollback()


class _Driver(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> _Connection:
        return _Connection(self, super().connect(*arg, **kw)._connection)


DRIVER = _Driver(aiosqlite, sqlite3)
