"""How the app connects to PostgreSQL: pool sizes from the settings, and the store working
behind a real PgBouncer in transaction mode with prepared statements off."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

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
