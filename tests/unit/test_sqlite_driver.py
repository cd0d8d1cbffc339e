"""SQLite's connections (`sqlite_driver`): each statement in one trip to aiosqlite's thread, and
everything a DBAPI cursor reports still reported."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from sweedle_core.db import sqlite_driver
from sweedle_core.db.engine import SQLITE_CACHE_MIB, make_engine


@pytest.fixture
async def engine(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
    yield engine
    await engine.dispose()


async def test_rows_counts_ids_and_errors_are_reported_as_a_dbapi_cursor_reports_them(engine):
    async with engine.begin() as connection:
        inserted = await connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
        assert inserted.lastrowid == 1
        await connection.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}])
        changed = await connection.execute(text("UPDATE t SET v = v || '!' WHERE id > 1"))
        assert changed.rowcount == 2
        rows = await connection.execute(text("SELECT id, v FROM t ORDER BY id"))
        assert list(rows.keys()) == ["id", "v"]
        assert rows.all() == [(1, "a"), (2, "b!"), (3, "c!")]
        assert (await connection.execute(text("SELECT v FROM t WHERE id = 9"))).first() is None
        batches = (await connection.execute(text("SELECT v FROM t ORDER BY id"))).partitions(2)
        assert [[v for (v,) in batch] for batch in batches] == [["a", "b!"], ["c!"]]
        assert len((await connection.execute(text("SELECT v FROM t"))).fetchmany()) == 1
    async with engine.connect() as connection:
        with pytest.raises(IntegrityError):
            await connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
        await connection.rollback()
        with pytest.raises(OperationalError, match="no such table"):
            await connection.execute(text("SELECT * FROM missing"))


async def test_a_rollback_undoes_a_write_and_a_read_leaves_no_transaction_open(engine):
    async with engine.connect() as connection:
        await connection.execute(text("INSERT INTO t (v) VALUES ('gone')"))
        await connection.rollback()
        assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar() == 0
        raw = (await connection.get_raw_connection()).driver_connection
        assert not raw.in_transaction  # the read began none: its rollback has nothing to send
    # Another connection writes at once: no read holds a lock or a transaction open.
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO t (v) VALUES ('kept')"))
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT v FROM t"))).scalars().all() == ["kept"]


async def test_the_engine_connects_through_the_one_trip_driver(engine):
    """Not SQLAlchemy's stock adapter, which the tests above would pass as well."""
    async with engine.connect() as connection:
        raw = (await connection.get_raw_connection()).dbapi_connection
        assert type(raw).__module__ == sqlite_driver.__name__


async def test_each_connection_keeps_a_page_cache_of_its_own_size(engine):
    async with engine.connect() as connection:
        kib = (await connection.execute(text("PRAGMA cache_size"))).scalar()
    assert kib == -SQLITE_CACHE_MIB * 1024  # SQLite's own is 2 MiB


async def test_a_cursor_used_again_keeps_nothing_of_its_last_statement(engine):
    def reuse(connection):
        cursor = connection.connection.dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.execute("UPDATE t SET v = v")
        return cursor.description, cursor.fetchall()

    async with engine.connect() as connection:
        assert await connection.run_sync(reuse) == (None, [])
