"""Engines, sessions and migrations for whichever database ``DATABASE_URL`` names."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from alembic import command
from alembic.config import Config
from pydantic_core import from_json
from sqlalchemy import event
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from sweedle_core.db import postgres_driver, sqlite_driver
from sweedle_core.db.search import FOLD, fold
from sweedle_core.storage.atomic import make_folder

if TYPE_CHECKING:
    from sweedle_core.config import Settings

T = TypeVar("T")
MIGRATIONS = Path(__file__).with_name("migrations")
# Several Ray processes write to one SQLite file: wait for a lock rather than fail at once.
SQLITE_BUSY_TIMEOUT_S = 30
# Each connection's page cache (SQLite's own is 2 MiB). At a million assets, pages that read
# an index's far pages (a jump to page 2000, a search's ids) took 2.8-3.8 ms with 2 MiB and
# 1.9-2.9 ms with 16 MiB; more gained little (BENCHMARKS.md). A small library never fills it;
# a big one holds up to this much for each of a process's pooled connections (5, 15 at most).
SQLITE_CACHE_MIB = 16


SQLITE_PREFIX = "sqlite+aiosqlite:///"


def sqlite_file(url: str) -> str | None:
    """The file a SQLite URL names, as written (maybe relative); None for another database or
    an in-memory one."""
    if not url.startswith(SQLITE_PREFIX):
        return None
    path = url[len(SQLITE_PREFIX) :]
    return path if path and path != ":memory:" else None


@dataclass(frozen=True)
class DatabaseOptions:
    """How a process connects to a server database (PostgreSQL): each process (a replica, the
    queue actor) keeps up to ``pool_size`` connections open and opens up to ``max_overflow``
    more at its busiest. ``prepared_statements`` off is for PgBouncer in transaction mode, which
    hands each transaction to any server connection, where a statement prepared on another
    one is missing (or one of the same name exists already)."""

    pool_size: int = 5
    max_overflow: int = 10
    prepared_statements: bool = True

    @classmethod
    def of(cls, settings: Settings) -> DatabaseOptions:
        return cls(
            settings.database_pool_size,
            settings.database_max_overflow,
            settings.database_prepared_statements,
        )

    def connect_args(self) -> dict[str, Any]:
        if self.prepared_statements:
            return {}
        # asyncpg caches no statement, SQLAlchemy's dialect none either, and the statements
        # asyncpg still prepares get names no other connection uses.
        return {
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": _unique_statement_name,
        }


def _unique_statement_name() -> str:
    return f"__sweedle_{uuid.uuid4().hex}__"


def direct_postgres(url: str, options: DatabaseOptions) -> bool:
    """Whether ``url`` reaches PostgreSQL itself through asyncpg, with no PgBouncer in
    transaction mode between (prepared statements on, `DatabaseOptions`). Only then may a
    statement go outside a transaction: PgBouncer may send it to another server connection than
    the one its prepared form is on."""
    parsed = make_url(url)
    return (
        parsed.get_backend_name() == "postgresql"
        and parsed.get_driver_name() == "asyncpg"
        and options.prepared_statements
    )


class _HintedSQLiteCompiler(SQLiteCompiler):
    """SQLAlchemy's SQLite compiler with its table hints (`Select.with_hint(table, text,
    "sqlite")`), which it otherwise drops. Only for SQLite's `INDEXED BY` (`filters.by_tag`),
    which goes where they go: after the table and its alias."""

    def get_from_hint_text(self, table: Any, text: str | None) -> str | None:
        return text


def make_engine(url: str, options: DatabaseOptions = DatabaseOptions()) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout, foreign keys, a page cache and the
    search's case folding (`search.FOLD`) on every connection, and its index hints; a server
    database is pooled as ``options`` say."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # Its ping in one trip, not three; not behind PgBouncer (`postgres_driver`).
        direct = direct_postgres(url, options)
        return create_async_engine(
            url,
            pool_pre_ping=True,
            pool_size=options.pool_size,
            max_overflow=options.max_overflow,
            connect_args=options.connect_args(),
            json_deserializer=from_json,
            **({"module": postgres_driver.DRIVER} if direct else {}),
        )
    if parsed.database and parsed.database != ":memory:":
        database = Path(parsed.database)
        make_folder(database.parent, private=True)
        # Created here, empty, readable by this user only; SQLite gives its WAL files the same.
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
    engine = create_async_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S},
        module=sqlite_driver.DRIVER,
        json_deserializer=from_json,
    )

    engine.dialect.statement_compiler = _HintedSQLiteCompiler

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA cache_size={-SQLITE_CACHE_MIB * 1024}")  # negative: in KiB
        cursor.close()
        dbapi_connection.create_function(FOLD, 1, fold, deterministic=True)

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str, options: DatabaseOptions = DatabaseOptions()) -> Config:
    """Alembic's configuration for the database at ``url``, with our migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["database_options"] = options
    return config


def run_in_own_thread(work: Callable[[], T]) -> T:
    """Run ``work`` in a thread of its own and return its result (or raise its error).

    Alembic's async environment calls ``asyncio.run``, which cannot run on a thread that already
    has an event loop; a thread of its own works whether or not the caller has one.
    """
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(work())
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="sweedle-db-thread")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


def migrate(url: str, options: DatabaseOptions = DatabaseOptions()) -> None:
    """Bring the schema to the newest Alembic revision."""
    run_in_own_thread(lambda: command.upgrade(alembic_config(url, options), "head"))


async def migrate_async(url: str, options: DatabaseOptions = DatabaseOptions()) -> None:
    await asyncio.to_thread(migrate, url, options)
