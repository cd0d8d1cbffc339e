"""One set of Alembic migrations serves SQLite and PostgreSQL, both ways.

The store's own tests run on both backends through the ``store`` fixture (``conftest.py``).
"""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import async_sessionmaker

from sweedle_core.db.engine import alembic_config, make_engine
from sweedle_core.db.models import Asset, Base, Tag

MAPPED_TABLES = set(Base.metadata.tables)
# The name search index (migration 0014) lives beside the models: on SQLite an FTS5 table (and
# the shadow tables FTS5 keeps, named after it) with its key table, on PostgreSQL a GIN index;
# and SQLite's counts of each tag's links (migration 0015).
SEARCH_INDEX = ("asset_names", "asset_search_keys", "ix_assets_name_trigrams", "tag_link_counts")


def modelled(name: str | None, *_: object) -> bool:
    return name is None or not name.startswith(SEARCH_INDEX)


async def schema(url: str) -> tuple[set[str], list[str]]:
    """The database's tables, and the revisions Alembic has recorded in it."""
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            tables = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
            revisions = []
            if "alembic_version" in tables:
                revisions = list(
                    await connection.scalars(text("SELECT version_num FROM alembic_version"))
                )
    finally:
        await engine.dispose()
    return {t for t in tables if modelled(t)} - {"alembic_version"}, revisions


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A new SQLite file, or the tests' PostgreSQL database (at head if the store came first)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
    return request.getfixturevalue("postgres_server")


async def test_the_migrations_go_up_to_head_down_to_base_and_up_again(database_url):
    config = alembic_config(database_url)
    head = ScriptDirectory.from_config(config).get_current_head()

    # The migrations run their own event loop (see ``migrate``): each command gets a thread.
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await schema(database_url) == (MAPPED_TABLES, [head])

    await asyncio.to_thread(command.downgrade, config, "base")
    assert await schema(database_url) == (set(), [])

    await asyncio.to_thread(command.upgrade, config, "head")
    assert await schema(database_url) == (MAPPED_TABLES, [head])

    # At head the database is what the models say: no column, index or key differs.
    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            drift = await connection.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"include_name": modelled}), Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert drift == []


async def test_each_store_runs_on_the_backend_its_id_names(store, request):
    assert store.engine.dialect.name == request.node.callspec.params["store"]


async def test_links_made_before_migration_0015_get_their_assets_time_name_and_owner(
    database_url,
):
    """A library written before 0015 has its tag links filled when the migrations run (and on
    SQLite each tag's count), and links written after are filled by their triggers (on
    PostgreSQL with the name in lower case, migration 0016; the owner since 0017)."""
    config = alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(command.upgrade, config, "0014")
    engine = make_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    links = text(
        "SELECT a.name, l.name, a.created_at = l.created_at, l.owner "
        "FROM asset_tags AS l JOIN assets AS a ON a.id = l.asset_id ORDER BY a.name"
    )
    try:
        async with sessions.begin() as session:
            wood = Tag(name="wood")
            session.add_all(
                Asset(name=name, owner=owner, tags=[wood], generation_params={}, metadata_={})
                for name, owner in (("Oak Chair", "a"), ("Pine Table", None))
            )
        await asyncio.to_thread(command.upgrade, config, "head")
        async with sessions.begin() as session:
            session.add(
                Asset(name="Elm Stool", owner="b", tags=[wood], generation_params={}, metadata_={})
            )
        async with engine.connect() as connection:
            copied = (await connection.execute(links)).all()
            if engine.dialect.name == "sqlite":
                counts = (await connection.execute(text("SELECT links FROM tag_link_counts"))).all()
                assert counts == [(3,)]
    finally:
        await engine.dispose()
    # PostgreSQL's copies in lower case (migration 0016), made before it or after.
    copy = str.lower if engine.dialect.name == "postgresql" else str
    assert [tuple(row) for row in copied] == [
        ("Elm Stool", copy("Elm Stool"), True, "b"),
        ("Oak Chair", copy("Oak Chair"), True, "a"),
        ("Pine Table", copy("Pine Table"), True, None),
    ]
