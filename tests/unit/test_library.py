"""The asset library against a real database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, text, update

from sweedle_core.db import filters, paging
from sweedle_core.db.library import AssetQuery, JobQuery, normalize_tag
from sweedle_core.db.models import (
    Asset,
    IdempotencyRecord,
    Tag,
    WebhookDelivery,
    new_id,
    utcnow,
)
from sweedle_core.db.store import Store
from sweedle_core.errors import AssetNotFound, InvalidCursor, InvalidTag, JobNotFound
from sweedle_core.idempotency import Idempotency, IdempotencyTaken, idempotency
from sweedle_core.jobs.states import JobStatus
from sweedle_core.params import GenerationParams, Priority
from sweedle_core.schemas import AssetPage, AssetRead
from tests.cursors import forged

NAMES = ["oak chair", "stone lantern", "low-poly tree", "100% cotton", "snake_case", 'it\'s "q"']


async def make(store: Store, name: str, owner: str | None = None, **kwargs):
    return await store.create_job(
        name=name,
        params=GenerationParams(),
        priority=Priority.NORMAL,
        original_filename=None,
        input_path="x/input.png",
        owner=owner,
        **kwargs,
    )


async def library_of(store: Store, count: int) -> list[str]:
    """``count`` assets cycling through NAMES, vertex counts and tags, written in one
    transaction (a few hundred API-sized writes would take seconds); ids in creation order."""
    tags = {name: Tag(name=name) for name in ("prop", "wood", "low-poly")}
    start = utcnow() - timedelta(hours=1)
    assets = []
    for i in range(count):
        labels = ["prop"] + (["wood"] if i % 3 == 0 else []) + (["low-poly"] if i % 5 == 0 else [])
        assets.append(
            Asset(
                id=new_id(),
                name=f"{NAMES[i % len(NAMES)]} {i:03d}",
                owner="a" if i % 2 else "b",
                status="completed" if i % 4 else "pending",
                vertex_count=1000 - i if i % 4 else None,
                created_at=start + timedelta(seconds=i),
                tags=[tags[t] for t in labels],
                generation_params={},
                metadata_={},
            )
        )
    async with store.sessions.begin() as session:
        session.add_all(assets)
    return [a.id for a in assets]


@pytest.fixture
async def filled(store):
    return await library_of(store, 300)


async def names_of(store: Store, sees: str | None = None, **query) -> list[str]:
    page = await store.library.find(AssetQuery(page_size=100, **query), sees)
    return [a.name for a in page.items]


def walk_tags(monkeypatch, exact_up_to: int, sample: int) -> None:
    """Pages with a tag walk its links, their totals counted up to ``exact_up_to`` and sampled
    ``sample`` links at a time past it."""
    monkeypatch.setattr(filters, "DRIVE_UP_TO", 0)  # the tag's links lead
    monkeypatch.setattr(filters, "TOTAL_EXACT_UP_TO", exact_up_to)
    monkeypatch.setattr(paging, "TOTAL_EXACT_UP_TO", exact_up_to)
    monkeypatch.setattr(filters, "SAMPLE", sample)


async def test_filters_paging_and_totals_over_a_few_hundred_assets(store, filled):
    everything = await store.library.find(AssetQuery(page_size=100), None)
    assert (everything.total, everything.pages, len(everything.items)) == (300, 3, 100)

    wood = await store.library.find(AssetQuery(tags=["wood"], page_size=7, page=2), None)
    assert wood.total == 100 and wood.pages == 15 and len(wood.items) == 7
    both = await store.library.find(AssetQuery(tags=["WOOD", "Low  Poly"]), None)
    assert both.total == 20  # every 15th: multiples of 3 and of 5
    assert all({"wood", "low-poly"} <= {t["name"] for t in a.tags} for a in both.items)

    completed = await store.library.find(AssetQuery(status="completed"), None)
    assert completed.total == 225
    assert (await store.library.find(AssetQuery(source_type="text"), None)).total == 0
    assert (await store.library.find(AssetQuery(page=99), None)).items == []

    mine = await store.library.find(AssetQuery(), "a")
    assert mine.total == 150 and all(a.owner == "a" for a in mine.items)
    # An admin narrows to one owner; a key asking for another's gets nothing of theirs.
    assert (await store.library.find(AssetQuery(owner="b"), None)).total == 150
    assert (await store.library.find(AssetQuery(owner="b"), "a")).total == 0


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("100%", 50),  # % is a character, not a wildcard
        ("%", 50),
        ("_", 50),  # only snake_case has an underscore
        ("e_c", 50),
        ('it\'s "q"', 50),
        ("\\", 0),
        ("LANTERN", 50),  # case-insensitive
        ("wood", 100),  # the tag, not the name
        ("low-poly", 100),  # 50 names, 60 tagged, 10 both
    ],
)
async def test_search_matches_names_and_tags_literally(store, filled, search, expected):
    found = await store.library.find(AssetQuery(search=search), None)
    assert found.total == expected, search


async def test_sorting_by_each_column_both_ways(store, filled):
    by_name = await names_of(store, sort_by="name", sort_order="asc")
    assert by_name == sorted(by_name, key=str.lower)
    assert await names_of(store, sort_by="name", sort_order="desc") == sorted(
        (await names_of(store, sort_by="name", sort_order="desc")), key=str.lower, reverse=True
    )

    page = await store.library.find(AssetQuery(sort_by="vertex_count", page_size=100), None)
    counts = [a.vertex_count for a in page.items]
    assert counts == sorted(counts, reverse=True) and None not in counts
    last = await store.library.find(AssetQuery(sort_by="vertex_count", page=3, page_size=100), None)
    assert last.items[-1].vertex_count is None  # assets without a mesh come last

    oldest = await store.library.find(AssetQuery(sort_order="asc", page_size=1), None)
    assert oldest.items[0].name == "oak chair 000"


async def test_pages_never_repeat_or_skip_an_asset(store, filled):
    seen: list[str] = []
    for page in range(1, 12):
        found = await store.library.find(
            AssetQuery(page=page, page_size=29, sort_by="name", sort_order="asc"), None
        )
        seen += [a.id for a in found.items]
    assert len(seen) == len(set(seen)) == 300


QUERIES = [
    dict(search="chair"),
    dict(search="low-poly"),  # names and tags
    dict(search="wood", tags=["prop"]),
    dict(search="tree", tags=["wood"], status="completed"),
    dict(search="e_c", tags=["low-poly"], sort_by="name"),
    dict(tags=["wood", "low-poly"]),
    dict(search="oak", tags=["prop"], sort_order="asc"),
]


@pytest.mark.parametrize(
    ("drive_up_to", "exact_up_to"),
    [(2_000, 10_000), (0, 10_000), (0, 20), (0, 60)],
    ids=[
        "drivers lead",
        "probes, drivers count",
        "probes, estimated",
        "probes, a lone search's parts counted",
    ],
)
async def test_every_plan_of_a_filter_finds_the_same_assets(
    store, filled, monkeypatch, drive_up_to, exact_up_to
):
    """A filter is asked as a driver (IN what an index finds) or as a probe (tested row by row,
    along the order's index or, newest or oldest first, along a tag's own links) by how many
    assets its index finds: each way finds the same pages, and a total that is not counted says
    so (the threshold is lowered here to reach every way)."""
    expected = {}
    for query in QUERIES:
        found = await store.library.find(AssetQuery(page_size=100, **query), None)
        expected[str(query)] = ([a.id for a in found.items], found.total)
    monkeypatch.setattr(filters, "DRIVE_UP_TO", drive_up_to)
    monkeypatch.setattr(filters, "TOTAL_EXACT_UP_TO", exact_up_to)
    monkeypatch.setattr(paging, "TOTAL_EXACT_UP_TO", exact_up_to)
    kinds = set()
    for query in QUERIES:
        found = await store.library.find(AssetQuery(page_size=7, **query), None)
        ids = [a.id for a in found.items]
        while found.next_cursor:
            found = await store.library.find(
                AssetQuery(page_size=7, cursor=found.next_cursor, **query), None
            )
            ids += [a.id for a in found.items]
        want_ids, want_total = expected[str(query)]
        assert ids == want_ids, query
        kinds.add(found.total_kind)
        if found.total_kind == "more_than":
            assert found.total == exact_up_to < want_total, query
        elif found.total_kind == "exact" or store.engine.dialect.name == "sqlite":
            # SQLite's estimate, whose sample holds its whole driver (under 1,000 ids), is
            # the count; PostgreSQL's is its planner's guess.
            assert found.total == want_total, query
    if exact_up_to == 20 and store.engine.dialect.name == "sqlite":
        assert "estimate" in kinds


async def walk(store: Store, **query) -> list[Asset]:
    """Every asset ``query`` finds, a page of 29 at a time by cursor."""
    found = await store.library.find(AssetQuery(page_size=29, **query), None)
    seen = list(found.items)
    while found.next_cursor:
        cursor = found.next_cursor
        found = await store.library.find(AssetQuery(page_size=29, cursor=cursor, **query), None)
        assert found.page is None and found.total == 300
        seen += found.items
    return seen


@pytest.mark.parametrize("sort_by", ["created", "name", "vertex_count"])
@pytest.mark.parametrize("sort_order", ["asc", "desc"])
async def test_cursors_walk_every_order_as_pages_do(store, filled, sort_by, sort_order):
    by_cursor = await walk(store, sort_by=sort_by, sort_order=sort_order)
    by_page = [
        a.id
        for page in (1, 2, 3)
        for a in (
            await store.library.find(
                AssetQuery(page, 100, sort_by=sort_by, sort_order=sort_order), None
            )
        ).items
    ]
    assert [a.id for a in by_cursor] == by_page and len(set(by_page)) == 300
    if sort_by == "vertex_count":  # assets without a mesh last, either way
        assert {a.vertex_count for a in by_cursor[-75:]} == {None}


async def test_a_cursor_holds_its_place_while_assets_are_added(store, filled):
    first = await store.library.find(AssetQuery(page_size=50), None)
    newest = first.items[0].created_at
    async with store.sessions.begin() as session:  # newer ones and one among those to come
        added = [
            Asset(id=new_id(), name=f"late {i}", created_at=at, generation_params={}, metadata_={})
            for i, at in enumerate(
                [
                    newest + timedelta(minutes=1),
                    first.items[-1].created_at - timedelta(milliseconds=1),
                ]
            )
        ]
        session.add_all(added)
    rest = []
    found = first
    while found.next_cursor:
        found = await store.library.find(AssetQuery(page_size=50, cursor=found.next_cursor), None)
        rest += [a.id for a in found.items]
    shown = [a.id for a in first.items] + rest
    assert len(shown) == len(set(shown)) == 301  # every one once, and the one added behind
    assert added[1].id in rest and added[0].id not in shown


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        (dict(cursor="not a cursor"), "not one this server gave out"),
        (dict(cursor="eyJvIjoiY3JlYXRlZDpkZXNjIiwiayI6WzEsMl19"), "not one this server"),
        (dict(cursor="CURSOR", sort_by="name"), "for the order 'created:desc', not 'name:desc'"),
        (dict(cursor="CURSOR", page=2), "page or cursor, not both"),
    ],
)
async def test_a_bad_cursor_is_refused_saying_why(store, filled, query, problem):
    given = (await store.library.find(AssetQuery(page_size=10), None)).next_cursor
    if query["cursor"] == "CURSOR":
        query["cursor"] = given
    with pytest.raises(InvalidCursor, match=problem):
        await store.library.find(AssetQuery(**query), None)


async def test_a_large_total_stops_counting_and_says_so(store, filled, monkeypatch):
    monkeypatch.setattr(paging, "TOTAL_EXACT_UP_TO", 100)
    page = await store.library.find(AssetQuery(), None)
    if store.engine.dialect.name == "postgresql":
        assert page.total_kind == "estimate" and page.total > 100
    else:
        assert (page.total, page.total_kind) == (100, "more_than")
    wood = await store.library.find(AssetQuery(tags=["wood"]), None)
    assert (wood.total, wood.total_kind) == (100, "exact")  # at the threshold: still exact


async def test_postgresql_sizes_several_queries_by_one_explain_as_each_alone(store, filled):
    """The sizes of a search's and a tag's ids come from one EXPLAIN: each is its planner's
    estimate of that query alone, even where the planner splits the work among parallel
    workers (forced here, as it chooses at a million assets: under a count, each worker then
    holds only its share of the rows)."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite counts instead")
    queries = [
        select(1).select_from(Asset).where(Asset.name.icontains("o")),
        select(1).select_from(Asset),
        select(1).select_from(Asset).where(Asset.owner == "a", Asset.status == "pending"),
    ]
    async with store.engine.connect() as db:
        await db.execute(text("ANALYZE assets"))
        for setting in (
            "parallel_setup_cost",
            "parallel_tuple_cost",
            "min_parallel_table_scan_size",
        ):
            await db.execute(text(f"SET {setting} = 0"))
        alone = [await paging.planned_rows(db, query) for query in queries]
        assert await paging.planned_rows_each(db, queries) == alone
        assert alone[1] == 300 and 0 < alone[2] < 300


async def test_postgresql_does_not_count_what_its_planner_expects_far_past_the_limit(
    store, filled, monkeypatch
):
    """The planner expects 300 assets, past ten times a limit of 20: its estimate is the total,
    and no count reads the first 21 rows. Key a's 50 wood assets, expected under 200, are
    counted, and past the limit the estimate stands (never below the 21 rows counted)."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no planner statistics")
    async with store.engine.connect() as connection:
        await connection.execute(text("ANALYZE assets"))
        await connection.commit()
    monkeypatch.setattr(paging, "TOTAL_EXACT_UP_TO", 20)
    counts: list[str] = []
    listen = lambda *a: counts.append(a[2]) if "count(" in a[2] else None  # noqa: E731
    event.listen(store.engine.sync_engine, "before_cursor_execute", listen)
    try:
        everything = await store.library.find(AssetQuery(), None)
        assert (everything.total_kind, counts) == ("estimate", [])
        assert 200 < everything.total < 400  # 300, as ANALYZE found
        wood = await store.library.find(AssetQuery(tags=["wood"], owner="a"), None)
        assert wood.total_kind == "estimate" and wood.total >= 21 and counts
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", listen)


@pytest.mark.parametrize("exact_up_to", [10_000, 2])
async def test_a_search_folds_case_in_every_script_whichever_way_it_is_asked(
    store, monkeypatch, exact_up_to
):
    """The trigram index folds "É" to "é"; the same search tested row by row must too (SQLite's
    own lower() folds ASCII only). Accents are not folded away: "Ecole" is another word."""
    monkeypatch.setattr(filters, "DRIVE_UP_TO", exact_up_to)
    monkeypatch.setattr(filters, "TOTAL_EXACT_UP_TO", exact_up_to)
    monkeypatch.setattr(paging, "TOTAL_EXACT_UP_TO", exact_up_to)
    names = ["ÉCOLE a", "école b", "Ecole c", "ÉCOle d", "grande école e", "Σοφία f", "σοφία g"]
    async with store.sessions.begin() as session:
        session.add_all(Asset(name=n, generation_params={}, metadata_={}) for n in names)
    assert sorted(await names_of(store, search="éco")) == sorted(
        ["ÉCOLE a", "école b", "ÉCOle d", "grande école e"]
    )
    assert sorted(await names_of(store, search="ΣΟΦ")) == ["Σοφία f", "σοφία g"]
    assert await names_of(store, search="Ec") == ["Ecole c"]  # under the index's reach


@pytest.mark.parametrize("drive_up_to", [2_000, 0], ids=["drives", "walks the tag"])
@pytest.mark.parametrize("term", ["chair", "CHAIR", "cHaIr"])
async def test_a_search_tested_row_by_row_folds_ascii_case(store, monkeypatch, drive_up_to, term):
    """Names tested one by one (a walk along a tag's links, a driver's other filters) fold case
    as the index does: SQLite's own LIKE folds ASCII letters, PostgreSQL's ILIKE every one."""
    monkeypatch.setattr(filters, "DRIVE_UP_TO", drive_up_to)
    names = ["Oak CHAIR", "oak chair", "OAK Table", "chairman's desk"]
    async with store.sessions.begin() as session:
        wood = Tag(name="wood")
        session.add_all(
            Asset(name=n, tags=[wood], generation_params={}, metadata_={}) for n in names
        )
    found = await names_of(store, search=term, tags=["wood"], sort_by="name", sort_order="asc")
    assert found[0] == "chairman's desk" and sorted(found[1:]) == ["Oak CHAIR", "oak chair"]


async def test_a_cursor_for_a_long_name_in_any_script_is_taken_back(store):
    """The cursor of a page sorted by name holds the name: 255 characters of CJK, accents or
    quotes still make a cursor the API accepts, and it goes on."""
    names = ["漢" * 255, "é" * 255, '"' * 255, "z"]
    async with store.sessions.begin() as session:
        session.add_all(Asset(name=n, generation_params={}, metadata_={}) for n in names)
    query = dict(sort_by="name", sort_order="asc", page_size=1)
    found = await store.library.find(AssetQuery(**query), None)
    shown = [found.items[0].name]
    while found.next_cursor:
        assert len(found.next_cursor) <= paging.CURSOR_MAX
        found = await store.library.find(AssetQuery(cursor=found.next_cursor, **query), None)
        shown += [a.name for a in found.items]
    assert sorted(shown) == sorted(names) and len(shown) == 4


@pytest.mark.parametrize(
    ("sort_by", "keys"),
    [
        ("name", [[1, 2], "x"]),
        ("name", [{"a": 1}, "x"]),
        ("name", [3, "x"]),
        ("vertex_count", [2**63, "x"]),
        ("vertex_count", [True, "x"]),
        ("vertex_count", [1, None]),
        ("created", ["0001-01-01T00:00:00+05:00", "x"]),
        ("created", ["9999-12-31T23:59:59-05:00", "x"]),
        ("created", ["yesterday", "x"]),
        ("created", [1.5, "x"]),
    ],
)
async def test_an_edited_cursor_is_refused_not_failed_on(store, filled, sort_by, keys):
    cursor = (await store.library.find(AssetQuery(sort_by=sort_by), None)).next_cursor
    assert cursor is not None
    with pytest.raises(InvalidCursor, match="not one this server gave out"):
        await store.library.find(AssetQuery(sort_by=sort_by, cursor=forged(cursor, keys)), None)


async def test_a_cursor_is_refused_under_other_filters(store, filled):
    cursor = (await store.library.find(AssetQuery(search="oak", page_size=5), None)).next_cursor
    with pytest.raises(InvalidCursor, match="other filters"):
        await store.library.find(AssetQuery(search="stone", cursor=cursor), None)
    jobs = await store.library.jobs(JobQuery(), None)  # no jobs: a cursor of no page
    assert jobs.next_cursor is None


async def test_an_estimate_is_never_below_the_assets_shown(store, filled, monkeypatch):
    """Newer assets, tagged like 100 older ones: a sample of the tag's first or last links would
    hold none or all of them (130). The estimate samples a range of ids (random, so of every
    age), and is never below what the page shows (and one more when a page follows); up to the
    exact limit the tag's links are all counted."""
    walk_tags(monkeypatch, 10, 50)  # a sample of about 50 of the tag's 130 links
    async with store.sessions.begin() as session:
        wood = await session.scalar(select(Tag).where(Tag.name == "wood"))
        session.add_all(
            Asset(name=f"fresh {i}", tags=[wood], generation_params={}, metadata_={})
            for i in range(30)
        )
    if store.engine.dialect.name == "postgresql":  # the tag's size: its planner's statistics
        async with store.engine.connect() as connection:
            await connection.execute(text("ANALYZE asset_tags"))
            await connection.commit()
    query = AssetQuery(search="fresh", tags=["wood"], page_size=10)
    page = await store.library.find(query, None)
    assert [a.name for a in page.items] == [f"fresh {i}" for i in range(29, 19, -1)]
    assert page.next_cursor is not None
    assert page.total_kind == "estimate" and 11 <= page.total <= 100  # 30
    monkeypatch.setattr(filters, "TOTAL_EXACT_UP_TO", 1_000)
    page = await store.library.find(query, None)
    assert (page.total, page.total_kind) == (30, "exact")


async def test_a_walks_sample_tests_its_links_as_the_page_does(store, monkeypatch):
    """A page walks the tag prop's 20 links, and its total is sampled from a range of ids: here
    wide enough to hold every link, so the estimate is the count of those passing the other
    filters (the tag wood; "oak" in the name's copy or in the tag oak), as the whole result,
    read in one page, counts them."""
    monkeypatch.setattr(filters, "DRIVE_UP_TO", 0)  # the tag's links lead
    monkeypatch.setattr(filters, "TOTAL_EXACT_UP_TO", 5)  # a sample, not a count
    monkeypatch.setattr(filters, "SAMPLE", 1_000)
    tags = {name: Tag(name=name) for name in ("prop", "wood", "oak")}
    async with store.sessions.begin() as session:
        session.add_all(
            Asset(
                name="oak chair" if 5 <= i < 15 else "pine table",
                tags=[tags["wood"]] + [tags["prop"]] * (i % 2 == 0) + [tags["oak"]] * (i < 10),
                generation_params={},
                metadata_={},
            )
            for i in range(40)
        )
    if store.engine.dialect.name == "postgresql":  # the tags' sizes: its planner's statistics
        async with store.engine.connect() as connection:
            await connection.execute(text("ANALYZE asset_tags"))
            await connection.commit()
    query = AssetQuery(search="oak", tags=["wood", "prop"], page_size=3)
    page = await store.library.find(query, None)
    assert (page.total, page.total_kind) == (8, "estimate")  # even, under 15
    whole = await store.library.find(replace(query, page_size=100), None)  # ends: counted
    assert (whole.total, whole.total_kind) == (8, "exact")


@pytest.mark.parametrize(
    ("exact_up_to", "sample", "kind"),
    [(10_000, 1_000, "exact"), (10, 1_000, "exact"), (10, 10, "estimate")],
    ids=["counted", "fewer than a sample", "sampled"],
)
async def test_a_keys_page_along_a_tags_links_holds_its_own_assets(
    store, filled, monkeypatch, exact_up_to, sample, kind
):
    """A key's page walked along a tag's links (each holds its asset's owner) shows the key's
    own matches, newest first, page after page, with their total: counted among the key's links
    of the tag, or estimated from a sample of them. Another key's asked for by a key: nothing."""
    walk_tags(monkeypatch, exact_up_to, sample)
    # Key a's assets are the odd ones; low-poly is on every fifth; "ton": stone, cotton.
    expected = [
        filled[i]
        for i in reversed(range(300))
        if i % 2 and i % 5 == 0 and "ton" in NAMES[i % len(NAMES)]
    ]
    query = AssetQuery(search="ton", tags=["low-poly", "prop"], page_size=7)
    shown, cursor = [], None
    while True:
        page = await store.library.find(replace(query, cursor=cursor), "a")
        shown += [a.id for a in page.items]
        assert all(a.owner == "a" for a in page.items)
        assert page.total_kind == kind and page.total >= len(page.items)
        if kind == "exact":
            assert page.total == len(expected)
        if (cursor := page.next_cursor) is None:
            break
    assert shown == expected and len(expected) == 20
    others = await store.library.find(replace(query, owner="b"), "a")
    assert (others.items, others.total) == ([], 0)


@pytest.mark.parametrize(("search", "matches"), [("oak", 50), (None, 100)])
async def test_a_small_keys_estimate_samples_its_own_links(store, monkeypatch, search, matches):
    """A key with few of a tag's many links: its total is estimated from a sample of its own
    links (their first by random id, off their index), not from a range of the tag's, which
    would hold few of them. 1,000 assets carry the tag; the key owns 100, 50 of them "oak"."""
    walk_tags(monkeypatch, 30, 50)
    async with store.sessions.begin() as session:
        wood = Tag(name="wood")
        session.add_all(
            Asset(
                name="oak chair" if i % 20 == 0 else "pine table",
                owner="small" if i % 10 == 0 else "studio",
                tags=[wood],
                generation_params={},
                metadata_={},
            )
            for i in range(1_000)
        )
    page = await store.library.find(AssetQuery(search=search, tags=["wood"], page_size=10), "small")
    assert page.total_kind == "estimate", page.total_kind
    assert matches / 2 <= page.total <= matches * 1.8, page.total
    assert len(page.items) == 10 and all(a.owner == "small" for a in page.items)


async def test_a_keys_links_with_ids_not_made_by_the_service_are_counted(store, monkeypatch):
    """A key's sample reads how many links it has off their random hex ids; assets written with
    other ids (outside the API) are counted instead of failing the page."""
    walk_tags(monkeypatch, 5, 3)
    async with store.sessions.begin() as session:
        wood = Tag(name="wood")
        session.add_all(
            Asset(
                id=f"imported-{i:03d}",
                name=f"oak {i}",
                owner="k",
                tags=[wood],
                generation_params={},
                metadata_={},
            )
            for i in range(12)
        )
    page = await store.library.find(AssetQuery(tags=["wood"], page_size=4), "k")
    assert (page.total, page.total_kind, len(page.items)) == (12, "exact", 4)


async def test_a_cursor_goes_on_whichever_way_the_next_page_is_asked(store, filled, monkeypatch):
    """A page walked along a tag's links and one read off the assets' own index are in the same
    order with the same keys: a cursor from one goes on in the other (as when a tag grows past
    `DRIVE_UP_TO` between two pages), nothing repeated or skipped."""
    for sort_by in ("created", "name"):
        query = AssetQuery(search="o", tags=["prop"], sort_by=sort_by, page_size=30)
        everything = await store.library.find(replace(query, page_size=300), None)
        whole = [a.id for a in everything.items]
        seen: list[str] = []
        found = await store.library.find(query, None)
        for drive_up_to in [0, 2_000, 0, 2_000, 0]:
            seen += [a.id for a in found.items]
            if not found.next_cursor:
                break
            monkeypatch.setattr(filters, "DRIVE_UP_TO", drive_up_to)
            found = await store.library.find(replace(query, cursor=found.next_cursor), None)
        assert seen == whole[: len(seen)] and len(seen) == len(set(seen)) >= 60, sort_by


def test_tags_are_normalised():
    assert normalize_tag("  Low   Poly ") == "low-poly"
    assert normalize_tag("Ｗｏｏｄ") == "wood"  # NFKC: full-width letters
    for bad in ["", "   ", "a/b", "x" * 65, "<script>"]:
        with pytest.raises(InvalidTag):
            normalize_tag(bad)


async def test_tag_counts_follow_the_callers_assets(store, filled):
    assert dict(await store.library.tag_counts(None))["wood"] == 100
    counts_a = dict(await store.library.tag_counts("a"))
    assert counts_a["prop"] == 150 and counts_a["wood"] == 50
    assert await store.library.create_tag(" New Tag ") == ("new-tag", True)
    assert await store.library.create_tag("new-tag") == ("new-tag", False)
    assert dict(await store.library.tag_counts(None))["new-tag"] == 0


@pytest.mark.parametrize(
    "query",
    [
        AssetQuery(page_size=7),
        AssetQuery(page_size=7, sort_by="name", sort_order="asc"),
        # Assets without a mesh come last: pages 33 to 35 cross into them, and end there.
        AssetQuery(page_size=7, sort_by="vertex_count", sort_order="desc"),
        AssetQuery(page_size=7, sort_by="vertex_count", sort_order="asc"),
        AssetQuery(page_size=7, tags=["wood"], search="o"),  # along the tag's links
        AssetQuery(page_size=7, search="lantern", sort_by="name", sort_order="desc"),
    ],
)
async def test_a_jump_to_page_n_shows_what_n_pages_of_cursors_show(store, filled, query):
    """A jump skips the rows before it by their sort keys and reads on after the last of them:
    the same rows as going page by page, and as the whole result read at once, cut in pages;
    each page, by cursor or by jump (past the end too), has the whole result's total, counted
    in its page's statement or on its own."""
    whole = await store.library.find(replace(query, page_size=1_000), None)
    walked, cursor = [], None
    while True:
        found = await store.library.find(replace(query, cursor=cursor), None)
        walked.append([a.id for a in found.items])
        assert (found.total, found.total_kind) == (whole.total, "exact")
        if (cursor := found.next_cursor) is None:
            break
    size = query.page_size
    assert walked == [
        [a.id for a in whole.items[i : i + size]] for i in range(0, whole.total, size)
    ]
    assert len(walked) > 3
    for number in (1, 2, len(walked) // 2, len(walked) - 1, len(walked), len(walked) + 1):
        jumped = await store.library.find(replace(query, page=number), None)
        expected = walked[number - 1] if number <= len(walked) else []
        assert [a.id for a in jumped.items] == expected, f"page {number}"
        assert (jumped.next_cursor is None) == (number >= len(walked))
        assert (jumped.total, jumped.total_kind) == (whole.total, "exact"), f"page {number}"


class _Links:
    """Links as the HTTP layer would make them (`schemas.Links`)."""

    def download(self, asset_id: str, lod: int | None = None) -> str:
        return f"/files/{asset_id}" + ("" if lod is None else f"?lod={lod}")

    def thumbnail(self, asset_id: str) -> str:
        return f"/thumbnails/{asset_id}"

    def job(self, job_id: str) -> str:
        return f"/jobs/{job_id}"

    def job_feed(self, job_id: str) -> str:
        return f"/feed?job_id={job_id}"


@pytest.mark.parametrize(
    "query",
    [
        AssetQuery(page_size=30),  # the order's index
        AssetQuery(tags=["wood"], search="chair"),  # along the tag's links
        AssetQuery(tags=["low-poly"], sort_by="vertex_count", sort_order="asc"),
        AssetQuery(search="lantern", sort_by="name"),
    ],
)
async def test_a_page_shows_each_asset_as_it_reads_alone(store, filled, query):
    """A page's assets are read as rows with their tags in one column; each must read as the
    asset read alone does: every field, the links, and its tags in the same order."""
    links = _Links()
    async with store.sessions.begin() as session:
        shown = await store.library.find(AssetQuery(page_size=1), None)
        asset = await session.get(Asset, shown.items[0].id)
        asset.lods = [{"index": 0, "level": 1.0, "faces": 4, "vertices": 4, "file": "lod0.glb"}]
        asset.model_path, asset.thumbnail_path = "m.glb", "t.png"
        asset.input_path, asset.input_views = "i.png", {"left": "l.png"}
        # Tags made in another order than their names sort in: the order is the tag ids'.
        asset.tags = [Tag(name="zz-late"), *asset.tags, Tag(name="aa-early")]
    await make(store, "lantern without tags")  # the newest: on the first page, with no tags
    page = AssetPage.of(await store.library.find(query, None), links)
    assert page.items
    for shown_asset in page.items:
        alone = await store.library.get(shown_asset.id, None)
        assert shown_asset == AssetRead.of(alone, links)
    newest = await store.library.find(AssetQuery(page_size=2), None)
    bare, first = AssetPage.of(newest, links).items
    assert bare.name == "lantern without tags" and bare.tags == []
    assert first.download_url == f"/files/{first.id}" and first.views == ["front", "left"]
    assert first.lods and first.lods[0].download_url == f"/files/{first.id}?lod=0"
    assert [t.name for t in first.tags][-2:] == ["zz-late", "aa-early"]


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_a_page_from_the_last_vertex_counts_to_the_assets_without_one_shows_both(
    store, order
):
    """Sorted by vertex count, a page after a cursor may hold the last assets with a count and
    the first without, read by two statements (on SQLite the first also carries the total's
    counts): the page shows every one of them, those without a count last."""
    async with store.sessions.begin() as session:
        session.add_all(
            Asset(name=f"a{i}", vertex_count=i if i < 15 else None, generation_params={})
            for i in range(20)
        )
    query = AssetQuery(sort_by="vertex_count", sort_order=order, page_size=10)
    first = await store.library.find(query, None)
    after = await store.library.find(replace(query, cursor=first.next_cursor), None)
    counts = [a.vertex_count for a in AssetPage.of(after, _Links()).items]
    assert counts == [*(range(10, 15) if order == "asc" else range(4, -1, -1)), *[None] * 5]


async def test_a_key_lists_only_the_tags_on_its_own_assets(store, filled):
    """Another key's tag names are that key's: a scoped caller sees the tags its own assets
    carry; an admin (or a service without keys) sees every tag."""
    await store.library.create_tag("bobs-secret-project")

    mine = dict(await store.library.tag_counts("a"))
    everything = dict(await store.library.tag_counts(None))

    assert "bobs-secret-project" not in mine and everything["bobs-secret-project"] == 0
    assert all(count > 0 for count in mine.values())


async def test_edit_replaces_name_tags_and_metadata(store):
    job = await make(store, "chair", owner="a")
    edited = await store.library.edit(
        job.asset_id, "a", name="armchair", tags=["Wood", "wood", "red"], metadata={"k": [1]}
    )
    assert edited.name == "armchair"
    assert sorted(t.name for t in edited.tags) == ["red", "wood"]
    assert edited.metadata_ == {"k": [1]}
    kept = await store.library.edit(job.asset_id, "a", tags=["red"])
    assert (kept.name, [t.name for t in kept.tags], kept.metadata_) == (
        "armchair",
        ["red"],
        {"k": [1]},
    )
    with pytest.raises(AssetNotFound):
        await store.library.edit(job.asset_id, "b", name="stolen")  # another key's asset


async def test_a_new_name_and_a_deleted_asset_reach_the_search_index(store):
    """Search goes through a trigram index (on SQLite one kept by triggers): what the API
    writes is found at once, and only that."""
    job = await make(store, "oak chair", owner="a")

    async def found(term: str) -> int:
        return (await store.library.find(AssetQuery(search=term), None)).total

    assert (await found("oak chair"), await found("ch")) == (1, 1)
    await store.library.edit(job.asset_id, "a", name="Brass Lantern")
    assert (await found("chair"), await found("lantern"), await found("ss l")) == (0, 1, 1)
    assert await store.library.delete(job.asset_id)
    assert (await found("lantern"), await found("la")) == (0, 0)


async def test_a_tags_links_follow_their_assets_names_and_tags(store, filled, monkeypatch):
    """A page walked along a tag's links tests the name each link holds (copied by triggers,
    migration 0015): a rename reaches it at once, as do new tags and a deleted asset, and on
    SQLite each tag's count of links, which is then a lone tag's exact total."""
    monkeypatch.setattr(filters, "DRIVE_UP_TO", 0)  # every tag's links lead its pages

    async def found(search: str | None, tag: str) -> tuple[list[str], int]:
        page = await store.library.find(AssetQuery(search=search, tags=[tag]), None)
        return [a.id for a in page.items], page.total

    crate = (await store.library.find(AssetQuery(tags=["wood"], page_size=1), None)).items[0]
    assert (await found("zebra", "wood"))[0] == []
    await store.library.edit(crate.id, None, name="Zebra crate")
    assert (await found("zebra", "wood"))[0] == [crate.id]
    props = (await found(None, "prop"))[1]
    await store.library.edit(crate.id, None, tags=["prop", "striped"])
    assert ((await found("zebra", "wood"))[0], (await found("zebra", "striped"))[0]) == (
        [],
        [crate.id],
    )
    assert await store.library.delete(crate.id)
    assert (await found("zebra", "striped"))[0] == []
    if store.engine.dialect.name == "sqlite":  # PostgreSQL's lone tag: its planner's estimate
        assert (await found(None, "prop"))[1] == props - 1 == 299
        assert (await found(None, "striped"))[1] == 0


async def test_a_search_held_by_more_tags_than_are_listed_still_finds_them(store, monkeypatch):
    """Past `TAG_IDS_MAX` tags holding the term, they are found by a subquery, not listed; a
    tag filter asked beside it is still found by its name."""
    monkeypatch.setattr(filters, "TAG_IDS_MAX", 2)
    for name in ("zz-oak-a", "zz-oak-b", "zz-oak-c", "zz-oak-d"):
        await store.library.create_tag(name)
    job = await make(store, "crate")
    await store.library.edit(job.asset_id, None, tags=["zz-oak-d", "wood"])
    await make(store, "oak crate")  # found by name, without the tag
    found = await store.library.find(AssetQuery(search="OAK", tags=["wood"]), None)
    assert [a.id for a in found.items] == [job.asset_id]
    assert (await store.library.find(AssetQuery(search="oak"), None)).total == 2


async def test_another_owners_rows_are_not_found(store):
    job = await make(store, "chair", owner="a")
    assert (await store.library.get(job.asset_id, "a")).id == job.asset_id
    assert (await store.library.get(job.asset_id, None)).id == job.asset_id  # admin
    with pytest.raises(AssetNotFound):
        await store.library.get(job.asset_id, "b")
    with pytest.raises(JobNotFound):
        await store.library.get_job(job.id, "b")


async def test_delete_removes_the_asset_its_jobs_links_and_records(store):
    once = idempotency("a", "key-1", b"request")
    job = await make(store, "chair", owner="a", webhook_url="http://hook", idempotency=once)
    await store.library.edit(job.asset_id, None, tags=["wood"])
    finished = await store.finish_job(job.id, 0, JobStatus.FAILED, {"error": "x"}, {})
    assert finished.webhook_id

    assert await store.library.delete(job.asset_id)
    assert not await store.library.delete(job.asset_id)
    async with store.sessions() as session:
        for table in (Asset, WebhookDelivery, IdempotencyRecord):
            assert await session.scalar(select(func.count()).select_from(table)) == 0
        assert await session.scalar(select(func.count()).select_from(Tag)) == 1  # tags stay
    with pytest.raises(JobNotFound):
        await store.get_job(job.id)


async def test_job_history_filters_by_status_date_and_owner(store):
    jobs = [await make(store, f"j{i}", owner="a" if i < 4 else "b") for i in range(6)]
    await store.finish_job(jobs[0].id, 0, JobStatus.COMPLETED, {}, {})
    await store.finish_job(jobs[1].id, 0, JobStatus.FAILED, {"error": "x"}, {})
    async with store.sessions.begin() as session:  # one job from two days ago
        await session.execute(
            update(type(jobs[2]))
            .where(type(jobs[2]).id == jobs[2].id)
            .values(created_at=utcnow() - timedelta(days=2))
        )

    history = await store.library.jobs(JobQuery(page_size=3), None)
    assert (history.total, history.pages, len(history.items)) == (6, 2, 3)
    after = await store.library.jobs(JobQuery(page_size=3, cursor=history.next_cursor), None)
    second = await store.library.jobs(JobQuery(page=2, page_size=3), None)
    assert [j.id for j in after.items] == [j.id for j in second.items]
    assert after.items[-1].id == jobs[2].id and after.next_cursor is None  # the oldest, last
    failed_or_done = await store.library.jobs(JobQuery(status=["completed", "failed"]), "a")
    assert {j.id for j in failed_or_done.items} == {jobs[0].id, jobs[1].id}
    recent = await store.library.jobs(JobQuery(created_after=utcnow() - timedelta(days=1)), "a")
    assert jobs[2].id not in {j.id for j in recent.items} and recent.total == 3
    old = await store.library.jobs(JobQuery(created_before=utcnow() - timedelta(days=1)), None)
    assert [j.id for j in old.items] == [jobs[2].id]
    assert (await store.library.jobs(JobQuery(), "b")).total == 2
    assert (await store.library.jobs(JobQuery(owner="b"), None)).total == 2
    assert (await store.library.jobs(JobQuery(owner="b"), "a")).total == 0
    assert await store.library.waiting_jobs("a") == 2


async def test_an_idempotency_key_is_stored_once_with_its_job(store):
    once = idempotency("a", "key-1", b"body")
    job = await make(store, "chair", owner="a", idempotency=once)
    request_hash, found = await store.idempotent_job(once.record_id, timedelta(hours=1))
    assert (request_hash, found.id) == (once.request_hash, job.id)

    with pytest.raises(IdempotencyTaken):
        await make(store, "chair", owner="a", idempotency=Idempotency(once.record_id, "other"))
    assert (await store.library.find(AssetQuery(), None)).total == 1  # nothing half-written

    other_owner = idempotency("b", "key-1", b"body")
    assert other_owner.record_id != once.record_id
    assert idempotency("a", "key-1", b"bo", b"dy").request_hash != once.request_hash
    # An expired key is forgotten.
    assert await store.idempotent_job(once.record_id, timedelta(seconds=-1)) is None
    assert await store.idempotent_job(once.record_id, timedelta(hours=1)) is None
