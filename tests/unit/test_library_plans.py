"""Every order the library pages by, and every search of 3 characters or more, is read off an
index, on SQLite and PostgreSQL: at a million assets a page costs what it reads, not a sort or a
scan of every row.

The page query the library actually ran is captured and explained. PostgreSQL is told not to
sort or scan where it has any other way (`enable_sort`, `enable_seqscan` off), so a plan that
still sorts found no index for the order; SQLite's planner says when it builds a temporary
b-tree for ORDER BY, and names the FTS5 table it searches.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import event

from sweedle_core.db import filters, shapes
from sweedle_core.db.library import AssetQuery, JobQuery
from sweedle_core.db.models import Asset, Tag
from sweedle_core.db.store import Store

SORTS = [
    (sort_by, order) for sort_by in ("created", "name", "vertex_count") for order in ("asc", "desc")
]


async def plan_of(store: Store, run: Callable[[], Awaitable[Any]]) -> str:
    """The plan of the first page query (the one with a LIMIT) that ``run`` made the library
    run."""
    return (await plans_of(store, run))[0]


async def plans_of(store: Store, run: Callable[[], Awaitable[Any]]) -> list[str]:
    """The plans of the page queries that ``run`` made the library run (not the count)."""
    seen: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "ORDER BY" in statement and "LIMIT" in statement:
            seen.append((statement, parameters))

    event.listen(store.engine.sync_engine, "before_cursor_execute", capture)
    try:
        await run()
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", capture)
    sqlite = store.engine.dialect.name == "sqlite"
    plans = []
    async with store.engine.connect() as connection:
        if not sqlite:
            await connection.exec_driver_sql("SET enable_sort = off")
            await connection.exec_driver_sql("SET enable_seqscan = off")
        explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
        for statement, parameters in seen:
            rows = await connection.exec_driver_sql(explain + statement, parameters)
            plans.append("\n".join(str(row[-1]) for row in rows))
    return plans


def assert_no_sort(plan: str) -> None:
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


@pytest.mark.parametrize("sees", [None, "studio"], ids=["every asset", "one key's"])
@pytest.mark.parametrize(("sort_by", "order"), SORTS)
async def test_each_asset_order_is_read_off_an_index(store, sort_by, order, sees):
    query = AssetQuery(sort_by=sort_by, sort_order=order)
    assert_no_sort(await plan_of(store, lambda: store.library.find(query, sees)))


@pytest.mark.parametrize("sees", [None, "studio"], ids=["every asset", "one key's"])
@pytest.mark.parametrize(("sort_by", "order"), SORTS)
async def test_a_cursor_starts_its_page_on_the_index_not_before_it(store, sort_by, order, sees):
    """The page after a cursor is a range of the order's index (SQLite SEARCHes it, PostgreSQL
    has an Index Cond), however deep: no OFFSET walks the rows before it."""
    async with store.sessions.begin() as session:
        session.add_all(
            Asset(name=f"a{i}", owner="studio", vertex_count=i or None, generation_params={})
            for i in range(3)
        )
    query = AssetQuery(page_size=1, sort_by=sort_by, sort_order=order)
    cursor = (await store.library.find(query, sees)).next_cursor
    for _ in range(2):  # the second: from the assets with a vertex count to those without
        found = lambda q=replace(query, cursor=cursor): store.library.find(q, sees)  # noqa: E731
        for plan in await plans_of(store, found):
            assert_no_sort(plan)
            assert ("SEARCH" if store.engine.dialect.name == "sqlite" else "Index Cond") in plan
        cursor = (await found()).next_cursor


@pytest.mark.parametrize("sees", [None, "studio"], ids=["every job", "one key's"])
async def test_job_history_is_read_off_an_index(store, sees):
    assert_no_sort(await plan_of(store, lambda: store.library.jobs(JobQuery(), sees)))


@pytest.mark.parametrize("term", ["chair", "100%", 'it"s'])
async def test_a_search_of_three_characters_or_more_is_read_off_the_trigram_index(store, term):
    query = AssetQuery(search=term)
    plan = await plan_of(store, lambda: store.library.find(query, None))
    index = (
        "VIRTUAL TABLE INDEX"
        if store.engine.dialect.name == "sqlite"
        else "ix_assets_name_trigrams"
    )
    assert index in plan, plan


@pytest.mark.parametrize(
    ("sort_by", "order", "index"),
    [
        ("created", "desc", "_order"),
        ("created", "asc", "_order"),
        ("name", "asc", "_name_order"),
        ("name", "desc", "_name_order"),
    ],
)
@pytest.mark.parametrize(
    ("sees", "links"), [(None, "tag"), ("studio", "owner")], ids=["every asset", "one key's"]
)
async def test_a_tag_with_many_assets_leads_the_page_off_its_own_links(
    store, monkeypatch, sort_by, order, index, sees, links
):
    """Past `DRIVE_UP_TO` assets a tag's links are walked in the page's order, with the search
    tested on the name each link holds: the page reads the links' index alone until it has its
    rows (no sort, and on PostgreSQL no visit to an asset before its link matched). A key's
    page walks its own links of the tag (each link holds its asset's owner)."""
    monkeypatch.setattr(filters, "DRIVE_UP_TO", 0)
    index = f"ix_asset_tags_{links}{index}"
    async with store.sessions.begin() as session:
        wood = Tag(name="wood")
        session.add_all(
            Asset(name=f"oak {i}", owner=owner, tags=[wood], generation_params={}, metadata_={})
            for i in range(3)
            for owner in ("studio", "other")
        )
    query = AssetQuery(search="oak", tags=["wood"], sort_by=sort_by, sort_order=order)
    plan = await plan_of(store, lambda: store.library.find(query, sees))
    assert_no_sort(plan)
    assert index in plan, plan
    if store.engine.dialect.name == "sqlite":
        assert f"COVERING INDEX {index}" in plan, plan
    else:
        # The search (a LIKE of the links' lower-cased names) filters their index-only scan,
        # before an asset is read.
        assert "Index Only Scan" in plan and plan.index("~~") < plan.index("assets_pkey"), plan


@pytest.mark.parametrize("drive_up_to", [2_000, 0], ids=["drives", "walks the tag"])
async def test_a_page_of_a_search_and_a_tag_takes_few_trips_to_the_database(
    store, monkeypatch, drive_up_to
):
    """Each statement is a trip to the database, a good part of a page's time. SQLite reads the
    tags and every filter's size in one (the tags' counters, a count off the names' index), then
    the page with its total; PostgreSQL reads the tags, asks its planner once for every size,
    then reads the page."""
    monkeypatch.setattr(filters, "DRIVE_UP_TO", drive_up_to)
    async with store.sessions.begin() as session:
        wood, oak = Tag(name="wood"), Tag(name="oak")  # the term is a tag's name too
        session.add_all(
            Asset(
                name=f"{'oak' if i % 2 else 'pine'} {i}",
                tags=[wood, oak] if i % 3 == 0 else [wood],
                generation_params={},
                metadata_={},
            )
            for i in range(30)
        )
    statements: list[str] = []

    def capture(conn, cursor, statement, *_: Any) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", capture)
    try:
        found = await store.library.find(AssetQuery(search="oak", tags=["wood"], page_size=5), None)
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", capture)
    # Odd names hold "oak" (15), and every third asset carries the tag oak (10; 5 of them even).
    assert (found.total, found.total_kind, len(found.items)) == (20, "exact", 5)
    expected = 2 if store.engine.dialect.name == "sqlite" else 3
    assert len(statements) == expected, statements


@pytest.mark.parametrize("drive_up_to", [2_000, 0], ids=["drives", "walks the tag"])
@pytest.mark.parametrize("sort_by", ["created", "name", "vertex_count"])
async def test_a_page_like_another_runs_its_statements_with_its_own_values(
    store, monkeypatch, sort_by, drive_up_to
):
    """Statements are built once per shape (`shapes`): a search and tag filter of the shape of
    one asked before (another term, another tag, another cursor) builds nothing, and finds its
    own assets, not the first's."""
    monkeypatch.setattr(filters, "DRIVE_UP_TO", drive_up_to)
    async with store.sessions.begin() as session:
        wood, metal = Tag(name="wood"), Tag(name="metal")
        session.add_all(
            Asset(
                name=f"{'oak' if i % 2 else 'pine'} {i}",
                tags=[wood if i % 4 < 2 else metal],
                vertex_count=i,
                generation_params={},
                metadata_={},
            )
            for i in range(24)
        )

    async def names(search: str, tag: str) -> list[str]:
        query = AssetQuery(search=search, tags=[tag], sort_by=sort_by, page_size=2)
        first = await store.library.find(query, None)
        after = await store.library.find(replace(query, cursor=first.next_cursor), None)
        for item in [*first.items, *after.items]:
            assert search in item.name and [t["name"] for t in item.tags] == [tag]
        return [item.name for item in [*first.items, *after.items]]

    await names("oak", "wood")
    built = shapes.builds()
    found = await names("pine", "metal")
    assert shapes.builds() == built
    assert len(set(found)) == 4  # two pages of two, of the six (2, 6, 10, 14, 18 and 22)


async def test_a_job_history_page_like_another_builds_nothing(store):
    """The job history's filters are bound as the library's are (`shapes`)."""
    asked = dict(created_after=datetime(2026, 1, 1, tzinfo=timezone.utc), page_size=5)
    await store.library.jobs(JobQuery(status=["completed"], owner="a", **asked), "a")
    built = shapes.builds()
    await store.library.jobs(JobQuery(status=["failed", "queued"], owner="b", **asked), "b")
    assert shapes.builds() == built


@pytest.mark.parametrize(
    "query",
    [
        AssetQuery(search="stone", tags=["lamp"], sort_by="name", sort_order="asc"),
        AssetQuery(tags=["lamp", "stone"], sort_by="name", sort_order="asc"),
    ],
    ids=["a search holding a tag's name", "a second tag"],
)
async def test_sqlite_probes_one_tags_links_off_that_tags_index(store, monkeypatch, query):
    """Each asset (here each link walked) is tested for one tag off the index by tag, not the
    primary key SQLite picks by itself (`filters.by_tag` says why, with its figures)."""
    if store.engine.dialect.name != "sqlite":
        pytest.skip("an index hint of SQLite's; PostgreSQL's planner picks the probe's index")
    monkeypatch.setattr(filters, "DRIVE_UP_TO", 0)
    async with store.sessions.begin() as session:
        lamp, stone = Tag(name="lamp"), Tag(name="stone")
        session.add_all(
            Asset(name=f"lamp {i}", tags=[lamp, stone][: i % 2 + 1], generation_params={})
            for i in range(4)
        )
    plan = await plan_of(store, lambda: store.library.find(query, None))
    probe = (
        "SEARCH asset_tags USING COVERING INDEX ix_asset_tags_tag_asset (tag_id=? AND asset_id=?)"
    )
    assert probe in plan, plan
    assert len((await store.library.find(query, None)).items) == 2
