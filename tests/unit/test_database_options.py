"""How the app connects to PostgreSQL: pool sizes from the settings, and the store working
behind a real PgBouncer in transaction mode with prepared statements off."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest
from sqlalchemy import make_url, text

from sweedle_core.config import Settings
from sweedle_core.db.engine import DatabaseOptions, make_engine, migrate_async
from sweedle_core.db.library import AssetQuery
from sweedle_core.db.store import Store
from sweedle_core.jobs.states import JobStatus
from tests.stand_ins.pgbouncer import pgbouncer
from tests.stand_ins.postgres import fresh_database
from tests.unit.test_store import create

BEHIND_PGBOUNCER = DatabaseOptions(pool_size=4, max_overflow=4, prepared_statements=False)


def test_the_pool_is_sized_by_the_settings() -> None:
    settings = Settings(
        database_pool_size=3, database_max_overflow=7, database_prepared_statements=False
    )
    options = DatabaseOptions.of(settings)
    assert options == DatabaseOptions(3, 7, prepared_statements=False)

    engine = make_engine("postgresql+asyncpg://sweedle@127.0.0.1:1/none", options)
    assert (engine.pool.size(), engine.pool._max_overflow) == (3, 7)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="database_pool_size"):
        Settings(database_pool_size=0)


@pytest.fixture
def through_pgbouncer() -> Iterator[str]:
    with fresh_database("sweedle_pgbouncer") as direct, pgbouncer(direct) as url:
        yield url


async def test_the_store_works_behind_pgbouncer_in_transaction_mode(through_pgbouncer) -> None:
    """Many transactions at once over two server connections: each lands on whichever is free,
    where asyncpg's prepared statements would be missing or clash."""
    await migrate_async(through_pgbouncer, BEHIND_PGBOUNCER)
    store = Store.from_url(through_pgbouncer, BEHIND_PGBOUNCER)
    try:
        jobs = await asyncio.gather(*(create(store, name=f"crate {i}") for i in range(24)))
        await asyncio.gather(
            *(store.update_job(job.id, 0, progress=0.5, message="halfway") for job in jobs)
        )
        finished = await asyncio.gather(
            *(store.finish_job(job.id, 0, JobStatus.COMPLETED, {}, {}) for job in jobs[:12])
        )
        pages = await asyncio.gather(
            *(store.library.find(AssetQuery(search="crate", page_size=50), None) for _ in range(8))
        )
    finally:
        await store.close()
    assert all(finished)
    assert {page.total for page in pages} == {24}


@pytest.fixture
def direct() -> Iterator[str]:
    with fresh_database("sweedle_ping") as url:
        yield url


async def test_the_pool_pings_in_one_trip_and_replaces_a_dropped_connection(
    direct, monkeypatch
) -> None:
    """The pool pings each connection it hands out with an empty statement, no transaction
    around it (three trips to the server were a good part of a library page); a connection the
    server dropped fails that ping and is replaced before a request uses it."""
    engine = make_engine(direct)
    try:
        async with engine.connect() as connection:
            first = await connection.scalar(text("SELECT pg_backend_pid()"))
        began: list[object] = []
        transaction = asyncpg.Connection.transaction
        monkeypatch.setattr(
            asyncpg.Connection,
            "transaction",
            lambda self, **kw: began.append(kw) or transaction(self, **kw),
        )
        async with engine.connect():  # handed out again: pinged, and nothing else asked
            pass
        assert began == []
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT pg_backend_pid()")) == first
        killer = await asyncpg.connect(
            make_url(direct).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        try:
            assert await killer.fetchval("SELECT pg_terminate_backend($1)", first)
        finally:
            await killer.close()
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT pg_backend_pid()")) != first
    finally:
        await engine.dispose()
