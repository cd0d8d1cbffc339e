"""Fixtures of the core tier: a real, migrated database per test, on SQLite and on PostgreSQL.

Every test that takes ``store`` runs twice, ``[sqlite]`` and ``[postgresql]``. The PostgreSQL
run needs a server named by ``TEST_DATABASE_URL`` (``.ci/run`` sets one); without it, or when it
cannot be reached, those runs are skipped with the reason. The database it names is the tests'
own: its ``public`` schema is dropped and migrated afresh once per session.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from sqlalchemy import exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from sweedle_core.db.engine import migrate, run_in_own_thread
from sweedle_core.db.models import Base
from sweedle_core.db.store import Store

BACKENDS = ["sqlite", "postgresql"]
# A server that is down answers at once; this bounds one that drops packets.
POSTGRES_CONNECT_TIMEOUT_S = 5
T = TypeVar("T")


def run_in_thread(work: Callable[[], Awaitable[T]]) -> T:
    """Run async work to its end on a loop and thread of its own, as ``migrate`` does.

    Session fixtures are synchronous, and ``asyncio.run`` on pytest's thread would unset the
    session loop pytest-asyncio keeps there.
    """
    return run_in_own_thread(lambda: asyncio.run(work()))


async def drop_public_schema(url: str) -> None:
    """Empty the tests' PostgreSQL database: every table, type and Alembic's version row."""
    engine = create_async_engine(url, connect_args={"timeout": POSTGRES_CONNECT_TIMEOUT_S})
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


async def truncate_tables(engine: AsyncEngine) -> None:
    """Empty every mapped table in one statement; alembic_version is not mapped, so it stays."""
    quote = engine.dialect.identifier_preparer.quote
    tables = ", ".join(quote(table.name) for table in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of an emptied PostgreSQL database (no schema yet), or a skip saying why not."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("PostgreSQL: TEST_DATABASE_URL is not set")
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() != "postgresql":
        pytest.fail(f"TEST_DATABASE_URL names {shown}, which is not a PostgreSQL database")
    try:
        run_in_thread(lambda: drop_public_schema(url))
    except (OSError, asyncio.TimeoutError, exc.DBAPIError) as error:
        cause = getattr(error, "orig", None) or error  # the driver's words, not SQLAlchemy's
        pytest.skip(f"PostgreSQL at {shown} is unreachable: {cause or type(cause).__name__}")
    return url


@pytest.fixture(scope="session")
def postgres_db(postgres_server) -> str:
    """The PostgreSQL database, migrated once per session; each test empties its tables."""
    migrate(postgres_server)
    return postgres_server


@pytest.fixture(params=BACKENDS)
async def store(request, tmp_path):
    """The store on an empty, migrated database of each backend."""
    if request.param == "sqlite":
        path = tmp_path / "sweedle.db"
        shutil.copyfile(request.getfixturevalue("migrated_db"), path)
        store = Store.from_url(f"sqlite+aiosqlite:///{path}")
    else:
        store = Store.from_url(request.getfixturevalue("postgres_db"))
        await truncate_tables(store.engine)
    yield store
    await store.close()
