"""The library's search and tag filters, written so a page costs about the same at a million
assets as at a thousand.

Each filter can be put to the database two ways:

- as a **probe** on each row (``name LIKE``, EXISTS among the asset's own tag links): the page
  walks its order's index and tests rows until the page is full; cheap when matches are common;
- as a **driver**: IN the set of ids the filter's own index finds (the trigram index of names,
  the tag's links); cheap when matches are few, which are then sorted.

Neither planner picks well between them by itself (SQLite has no statistics; PostgreSQL, given
the union of a search, mis-sizes it and sorts 50,000 matches, or given probes walks a million
rows for a term no name holds). So `AssetFilters.plan` sizes each driver first, on SQLite by a
count that stops past a threshold (read off the filter's own index; a tag's links are counted
by triggers), read with the tags asked in one statement (`tags_asked`), on PostgreSQL by its
planner's estimates (one EXPLAIN for all), and drives by the smallest when it finds few
(`DRIVE_UP_TO`), else probes.

A page in creation or name order with a tag filter past `DRIVE_UP_TO` walks that tag's own
links instead (`WALKED`): each link holds its asset's creation time, name and owner (migrations
0015 and 0017), so the page reads only the tag's assets in its order (a key's page, only the
key's own: `tags_asked` counts them), and tests the search on the link's copy of the name, off
the links' index, before any asset row is read.

The total follows, counted where it must be in the page's own statement (`paging.Tally`):
exact when a driver bounds the matches to `TOTAL_EXACT_UP_TO`; beyond, marked "estimate"
(PostgreSQL's planner's; on SQLite the smallest driver's size times the share of a sample spread
over its ids that pass the other filters), or "more_than" for a filter alone on SQLite. A walk
along a tag's links estimates the same way on both databases, from the tag's assets in a fixed
range of ids (`id_range`; ids are random, so the sample holds assets of every age and owner,
and the total does not change from page to page).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    ColumnElement,
    FromClause,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    column,
    exists,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    table,
    union,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from sweedle_core.db.models import TAG_ASSET_INDEX, Asset, Tag, asset_tags
from sweedle_core.db.paging import (
    TOTAL_EXACT_UP_TO,
    Tally,
    Total,
    Values,
    planned_rows,
    planned_rows_each,
    rows_meeting,
    tallied,
)
from sweedle_core.db.search import (
    TRIGRAM,
    Comparison,
    comparison,
    copy_holds,
    holds,
    matching_names,
    named,
    named_every,
    term_values,
)
from sweedle_core.db.shapes import built_once

# A driver finding this many ids or fewer leads the page: sorting them costs less than walking
# the order's index to the page's last match, which at 2,000 of a million (1 in 500) takes
# about 10,000 rows. Past it the walk is kept, though matches that all sit at the far end of the
# order (a tag only the oldest assets carry, newest first) make it read most of the index.
DRIVE_UP_TO = 2_000
# A search leads a page instead of a tag's links (`AssetFilters.plan`) only when it finds this
# many times fewer assets than the tag has links.
_FEWER_BY = 8
SAMPLE = 1_000  # about as many ids of a driver's part tested against the other filters
_ID_SPACE = 16**32  # asset ids: 32 hex digits
TAG_IDS_MAX = 500  # a search's matching tags named by id; more are found by a subquery
# SQLite: the links in the order they were made.
_LINK_KEY: ColumnElement[int] = literal_column("asset_tags.rowid")
# The links of the tag a page walks along (`Plan.source`), with their copies of the asset's
# creation time and name: an alias, as the filters' probes read `asset_tags` too.
WALKED = asset_tags.alias("walked")
_WALKED_ASSETS = WALKED.join(Asset, Asset.id == WALKED.c.asset_id)
# SQLite: each tag's number of links, kept by triggers (migration 0015).
_TAG_LINKS = table("tag_link_counts", column("tag_id"), column("links"))
# The ids of the tags a query names, and of those whose names hold its search term.
_NAMED_TAGS = bindparam("names", type_=String, expanding=True)
_TERM_TAGS = bindparam("term_tags", type_=Integer, expanding=True)
# The owner a page is limited to, whose links of a tag `tags_asked` counts.
_LINK_OWNER = bindparam("link_owner", type_=String)
# The range of ids a walk's total is sampled from (`id_range`).
_SPAN = (bindparam("span_low", type_=String), bindparam("span_high", type_=String))


def by_tag(links: Select[Any]) -> Select[Any]:
    """``links`` of one tag (a probe: by the tag and an asset) read off the index by tag, where
    that tag's links lie together, not the primary key's, which SQLite picks by itself and
    whose pages for random assets are spread over the whole table. 40,000 probes of one tag at
    a million assets took 137 ms, and 41 ms this way (its pages stay in the cache); of eight
    tags, 227 ms, and 529 ms this way (eight tags' links do not)."""
    return links.with_hint(asset_tags, f"INDEXED BY {TAG_ASSET_INDEX}", "sqlite")


def _in_span(ids: ColumnElement[str]) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return ids >= _SPAN[0], ids < _SPAN[1]


_IN_SPAN = _in_span(WALKED.c.asset_id)


@dataclass(frozen=True)
class Part:
    """The ids of the assets one index finds."""

    ids: Select[Any]
    rows: Select[Any]  # as many rows as ``ids``, the cheapest to count (SQLite)
    # Its ids of every n-th row, given n (a parameter), for a sample spread over time (SQLite).
    every: Callable[[ColumnElement[int]], Select[Any]] | None = None
    size: Select[Any] | None = None  # its number of ids, kept by the database (SQLite)


@dataclass(frozen=True, eq=False)
class Filter:
    """One search or tag filter in both forms: the probe, and the driver its parts make. Built
    once per shape (`shapes`), with the clauses made of it."""

    probe: ColumnElement[bool]
    parts: Sequence[Part]
    sized: bool = True  # False: no index finds it (a short term), so it never drives
    # The probe on a link a page walks (`WALKED`), read off its index, not the asset's row.
    linked: ColumnElement[bool] | None = None
    # ``linked`` for the links of a walk's sample (`_IN_SPAN`): the filter's own links in that
    # range read once, not probed for each link (a thousand probes took 4 ms on PostgreSQL).
    spanned: ColumnElement[bool] | None = None
    tag: int | None = None  # a tag filter's place among the query's tag ids (`tag_filter`)
    walked: ColumnElement[bool] | None = None  # a tag filter: the links a page walks are its

    @functools.cached_property
    def driver(self) -> Select[Any]:
        # One IN over the union, not an OR of two: each part is read off its own index.
        if len(self.parts) == 1:
            return self.parts[0].ids
        return select(union(*(p.ids for p in self.parts)).subquery().c[0])

    @functools.cached_property
    def drives(self) -> ColumnElement[bool]:
        """The assets its driver finds."""
        return Asset.id.in_(self.driver)

    @functools.cached_property
    def sampled(self) -> ColumnElement[bool]:
        """The assets of a sample of about `SAMPLE` ids of each part, spread evenly over it:
        every n-th row (`sample_values`), not the first ones, which are the oldest assets."""
        spread = [
            part.every(bindparam(name, type_=Integer))
            for name, part in zip(_EVERY, self.parts, strict=False)
            if part.every is not None
        ]
        return Asset.id.in_(
            spread[0] if len(spread) == 1 else select(union(*spread).subquery().c[0])
        )


_EVERY = ("every_0", "every_1")  # a driver's parts: its names, its tags


def sample_values(sizes: Sequence[int]) -> dict[str, int]:
    """The values of `Filter.sampled`'s parameters, for parts of ``sizes``."""
    return {name: max(1, size // SAMPLE) for name, size in zip(_EVERY, sizes, strict=False)}


@built_once
def _owners_last(
    walked: ColumnElement[bool], owners: tuple[ColumnElement[bool], ...], sample: int
) -> Select[Any]:
    """The asset id of the ``sample``-th of the ``walked`` tag's links of the page's ``owners``
    by asset id (`AssetFilters._owners_sample`), off their index."""
    first = select(WALKED.c.asset_id).where(walked, *owners).order_by(WALKED.c.asset_id)
    return first.offset(sample - 1).limit(1)


def _every_link(links: Select[Any]) -> Callable[[ColumnElement[int]], Select[Any]]:
    """`Part.every` of ``links``: by the order the links were made in."""
    return lambda every: links.where(_LINK_KEY % every == 0)


@built_once
def tag_filter(place: int) -> Filter:
    """Assets carrying the tag at ``place`` among the query's distinct tag ids, the id the value
    of `tag_key` (`Asked.ids`: -1 for a tag that does not exist, one place for all of them)."""
    tag = bindparam(tag_key(place), type_=Integer)
    links = select(asset_tags.c.asset_id).where(asset_tags.c.tag_id == tag)
    size = select(_TAG_LINKS.c.links).where(_TAG_LINKS.c.tag_id == tag)
    probed = by_tag(links)
    return Filter(
        exists(probed.where(asset_tags.c.asset_id == Asset.id)),
        [Part(links, links, _every_link(links), size)],
        linked=exists(probed.where(asset_tags.c.asset_id == WALKED.c.asset_id)),
        spanned=WALKED.c.asset_id.in_(links.where(*_in_span(asset_tags.c.asset_id))),
        tag=place,
        walked=WALKED.c.tag_id == tag,
    )


def tag_key(place: int) -> str:
    return f"tag_{place}"


TermTags = Literal["none", "one", "listed", "many"]


def term_tags(ids: Sequence[int] | None) -> TermTags:
    """How a search names the tags whose names hold its term (`Asked.term_tags`): none hold it,
    one, by their ids, or too many to list (a subquery finds them)."""
    if ids is None:
        return "many"
    return "one" if len(ids) == 1 else "listed" if ids else "none"


@built_once
def search_filter(dialect: str, indexed: bool, compared: Comparison, tagged: TermTags) -> Filter:
    """Assets whose name, or one of whose tags, holds the term (`search.term_values`),
    case-folded (`search.holds`). ``indexed``: the term has `TRIGRAM` characters or more;
    ``compared``: `search.comparison`; ``tagged``: `term_tags` (their ids the value of
    ``term_tags``)."""
    ids = named(dialect, indexed, compared)
    # SQLite counts the FTS rows themselves; PostgreSQL's planner sizes the ids' own query.
    fts = dialect == "sqlite" and indexed
    names = Part(ids, matching_names() if fts else ids, named_every if fts else None)
    probe = holds(Asset.name, compared)
    linked = spanned = copy_holds(WALKED.c.name, compared)
    parts = [names]
    if tagged != "none":
        tags = select(Tag.id).where(holds(Tag.name, compared)) if tagged == "many" else _TERM_TAGS
        tagged_ids = select(asset_tags.c.asset_id).where(asset_tags.c.tag_id.in_(tags))
        # A scalar subquery, not EXISTS: PostgreSQL would hash every link of those tags (a
        # hundred thousand) for each page, where one index probe per row walked is wanted.
        own = tagged_ids.with_only_columns(literal(1)).limit(1)
        if tagged == "one":  # of several tags, an asset's links lie together in the key
            own = by_tag(own)
        probe = or_(
            probe, own.where(asset_tags.c.asset_id == Asset.id).scalar_subquery().is_not(None)
        )
        linked = or_(
            linked,
            own.where(asset_tags.c.asset_id == WALKED.c.asset_id).scalar_subquery().is_not(None),
        )
        in_span = tagged_ids.where(*_in_span(asset_tags.c.asset_id))
        spanned = or_(spanned, WALKED.c.asset_id.in_(in_span))
        # SQLite: the tags' counters (PostgreSQL's planner sizes the links themselves).
        links = select(func.sum(_TAG_LINKS.c.links)).where(_TAG_LINKS.c.tag_id.in_(tags))
        size = links if dialect == "sqlite" else None
        parts.append(Part(tagged_ids, tagged_ids, _every_link(tagged_ids), size))
    return Filter(probe, parts, sized=indexed, linked=linked, spanned=spanned)


@dataclass(frozen=True)
class Asked:
    """What one read of the (small) tags table found for a query (`tags_asked`)."""

    ids: list[int]  # the tags named, in order (-1 for a name no tag has)
    term_tags: list[int] | None  # the tags whose names hold the search term; None: too many
    # SQLite, read in the same statement: each found tag's links (its counter), and the names
    # holding the term, counted up to the plan's cap + 1 (None for a term too short to look up).
    links: dict[int, int] | None = None
    named: int | None = None
    # A page limited to one owner: each named tag's links of that owner, counted up to
    # `TOTAL_EXACT_UP_TO` + 1 (None: every owner's).
    owned: dict[int, int] | None = None


def walks_links(along_links: bool, tagged: bool) -> bool:
    """Whether a page may walk a tag's links (`AssetFilters.plan`): in an order they hold, with a
    tag asked. Decided once per page: the filters' sizes are counted to its `size_cap`."""
    return along_links and tagged


def size_cap(walking: bool) -> int:
    """How far a driver is counted: to `DRIVE_UP_TO` where a walk may lead instead (only whether
    it is small matters), else to `TOTAL_EXACT_UP_TO` (it may be the total)."""
    return DRIVE_UP_TO if walking else TOTAL_EXACT_UP_TO


async def tags_asked(
    db: AsyncConnection,
    names: Sequence[str],
    term: str | None,
    dialect: str,
    cap: int,
    owner: str | None = None,
) -> Asked:
    """One read of the tags table: the ids of the tags ``names`` (normalised), by which the
    database sizes a tag from its own statistics or counter; and those of the tags whose names
    hold the search ``term`` (a search looks in them too, each asset then matched by tag id),
    None past `TAG_IDS_MAX`, a list too long to send. On SQLite the sizes come in the same
    statement (a statement fewer per page): each tag's counter, and the names holding ``term``
    counted up to ``cap`` + 1. For a page of one ``owner``'s assets, each named tag's links of
    that owner, counted up to `TOTAL_EXACT_UP_TO` + 1, come in it too."""
    if not names and not term:
        return Asked([], [])
    limit = len(names) + TAG_IDS_MAX + 1
    compared = comparison(term or "", dialect)
    values: dict[str, Any] = {"names": list(names), "link_owner": owner}
    if term:
        values |= term_values(term, dialect)
    owned = TOTAL_EXACT_UP_TO if owner is not None and names else None  # counted to it + 1
    links: dict[int, int] | None = None
    counted: int | None = None
    if dialect == "sqlite":
        indexed = term is not None and len(term) >= TRIGRAM
        sized = _asked_with_sizes(bool(term), compared, limit, indexed, cap, owned)
        tags, *named_count = (await db.execute(sized, values)).one()
        rows = [tag[:4] for tag in tags]  # as PostgreSQL's rows, then the tag's counter
        links = {tag[0]: tag[4] for tag in tags}
        counted = named_count[0] if named_count else None
    else:
        rows = list((await db.execute(_asked(bool(term), compared, limit, owned), values)).all())
    held: list[int] | None = [row[0] for row in rows if row[2]]
    if len(rows) == limit:  # too many hold the term: the named ones may not all be among them
        only_named = _asked(bool(term), compared, None, owned, only_named=True)
        rows = list((await db.execute(only_named, values)).all())
        links = None  # the sizes of those named are not all known
    if len(rows) == limit or len(held or []) > TAG_IDS_MAX:
        held = None
    found = {row[1]: row[0] for row in rows}
    # Each named tag's links of the owner (NULL on a row of a tag only holding the term).
    by_owner = {row[0]: row[3] for row in rows if row[3] is not None}
    return Asked(
        [found.get(name, -1) for name in names],
        held,
        links,
        counted,
        by_owner if owned is not None else None,
    )


@built_once
def _asked(
    searched: bool,
    compared: Comparison,
    limit: int | None,
    owned: int | None = None,
    only_named: bool = False,
) -> Select[Any]:
    """The tags named, and those holding the term where ``searched`` (up to ``limit``): id,
    name, whether it holds the term, and a named one's links of the owner counted up to
    ``owned`` + 1 (`Asked.owned`; NULL where ``owned`` is None)."""
    named_tags = Tag.name.in_(_NAMED_TAGS)
    holding = holds(Tag.name, compared) if searched else false()
    links: ColumnElement[Any] = null() if owned is None else _owned_links(owned)
    asked: Select[Any] = select(Tag.id, Tag.name, holding, links)
    return asked.where(named_tags if only_named else or_(named_tags, holding)).limit(limit)


def _owned_links(cap: int) -> ColumnElement[int]:
    """Of a tags row: its links of the owner ``link_owner`` (their own index), counted up to
    ``cap`` + 1, for a named tag only (a term's tags are sized as every owner's)."""
    links = (
        select(literal(1))
        .select_from(asset_tags)
        .where(asset_tags.c.tag_id == Tag.id, asset_tags.c.owner == _LINK_OWNER)
        .limit(cap + 1)
        .correlate(Tag)
        .subquery()
    )
    counted = select(func.count()).select_from(links).scalar_subquery()
    return case((Tag.name.in_(_NAMED_TAGS), counted))


@built_once
def _asked_with_sizes(
    searched: bool,
    compared: Comparison,
    limit: int,
    indexed: bool,
    cap: int,
    owned: int | None,
) -> Select[Any]:
    """`tags_asked`'s rows on SQLite with each one's links, and the names holding the term up to
    ``cap`` + 1 where ``indexed``, in one row: the tags as a JSON list (there may be none)."""
    found = (
        _asked(searched, compared, None, owned)
        .add_columns(func.coalesce(_TAG_LINKS.c.links, 0))
        .outerjoin(_TAG_LINKS, _TAG_LINKS.c.tag_id == Tag.id)
        .limit(limit)
        .subquery()
    )
    listed = select(func.json_group_array(func.json_array(*found.c), type_=JSON))
    columns = [listed.scalar_subquery()]
    if indexed:
        columns.append(_count_up_to(matching_names(), cap).scalar_subquery())
    return select(*columns)


@dataclass(frozen=True)
class Plan:
    """What a library query asks: the page's WHERE, and the count's (or its total, known);
    ``source``: where a page walks a tag's links (`WALKED` joined to their assets), in its
    order's keys there (`library.LINK_ORDERS`), instead of the order's own index. ``values``:
    those of the parameters it adds to the query's."""

    where: Sequence[Any]
    counted: Sequence[Any] | Total | Tally
    source: FromClause | None = None
    values: Values = field(default_factory=dict)


@dataclass(frozen=True)
class AssetFilters:
    """The conditions of one library query: ``base`` (owner, status, source: columns of the row)
    and the search and tag ``filters``, each built once (`shapes`), their parameters' values in
    ``values``. For a page walked along a tag's links (`WALKED`), ``base`` is split in two: the
    owner tested on the link's copy (``link_owners``), the rest on the asset (``on_assets``)."""

    base: Sequence[ColumnElement[bool]]
    filters: Sequence[Filter]
    dialect: str
    values: Values
    asked: Asked | None = None  # what `tags_asked` found, with the filters' sizes on SQLite
    link_owners: Sequence[ColumnElement[bool]] = ()
    on_assets: Sequence[ColumnElement[bool]] = ()

    async def plan(self, db: AsyncConnection, walks: bool) -> Plan:
        """``walks``: the page may walk a tag's links instead (`walks_links`)."""
        probes = (*self.base, *(f.probe for f in self.filters))
        sizable = [f for f in self.filters if f.sized]
        if not sizable:
            return Plan(probes, probes)
        # Where a tag's links can lead the page, a filter is only asked whether it is small.
        known = self._asked_sizes(sizable)
        sizes_of = known if known is not None else await self._sizes(db, sizable, size_cap(walks))
        sized = list(zip(sizes_of, sizable, strict=True))
        sizes, smallest = min(sized, key=lambda pair: sum(pair[0]))
        if walks:
            # The tag with the fewest links to walk: of the page's owner, where it has one
            # (counted up to `TOTAL_EXACT_UP_TO` + 1: past it, as the tag has them all).
            def walked(pair: tuple[int, Filter]) -> int:
                own = self._owned(pair[1])
                return pair[0] if own is None or own > TOTAL_EXACT_UP_TO else own

            links, tag = min(((sum(size), f) for size, f in sized if f.tag is not None), key=walked)
            # A search finding far fewer assets than the tag has leads instead: sorting those
            # few reads less than walking the tag's links to them.
            if sum(sizes) > DRIVE_UP_TO or sum(sizes) * _FEWER_BY > walked((links, tag)):
                own = self._owned(tag)
                if own is None:
                    return self._along(tag, links, id_range(links))
                if own <= TOTAL_EXACT_UP_TO:
                    return self._along(tag, own, None)
                return self._along(tag, *await self._owners_sample(db, tag))
        others = tuple(f.probe for f in self.filters if f is not smallest)
        driven = (*self.base, smallest.drives, *others)
        # One filter alone, found by one index and counted there (SQLite): that is the total.
        # Else the driver bounds the count: it is made in the page's statement, without asking
        # PostgreSQL's planner again (past the limit, the driver's estimated size stands).
        counted = sum(sizes) <= TOTAL_EXACT_UP_TO and len(sizes) == 1 and len(probes) == 1
        postgres = self.dialect == "postgresql"
        if counted and not postgres:
            total: Total | Tally = Total(sizes[0], "exact")
        else:
            # PostgreSQL counts a search of names alone by its own test, which the trigram
            # index answers in one bitmap scan; through its ids (an IN of the same table) each
            # match was joined back (5,000 matches at 100,000 assets: 15-18 ms, so 6 ms).
            alone = postgres and not others and smallest.tag is None and len(smallest.parts) == 1
            total = tallied(Asset, probes if alone else driven, sum(sizes) if postgres else None)
        if sum(sizes) <= DRIVE_UP_TO:
            return Plan(driven, total)
        if sum(sizes) <= TOTAL_EXACT_UP_TO:  # the driver bounds the count's work
            return Plan(probes, total)
        if postgres:
            estimate = await planned_rows(db, rows_meeting(Asset, driven), self.values)
            return Plan(probes, Total(estimate, "estimate"))
        if not self.base and not others:  # alone: one part past the threshold is enough
            if max(sizes) > TOTAL_EXACT_UP_TO:
                return Plan(probes, Total(TOTAL_EXACT_UP_TO, "more_than"))
            return Plan(probes, driven)  # its parts are each under it: the count is bounded
        return await self._sampled(db, probes, smallest, others)

    def _along(self, tag: Filter, size: int, span: tuple[str, str] | None) -> Plan:
        """The page walks ``tag``'s links in its order (a key's page, the key's own: their own
        index), testing only its assets, by the other filters' probes on the link
        (`Filter.linked`). The total: the tag's own count where nothing else filters (SQLite
        keeps it exact); else the assets of the ``size`` links walked that pass the other
        filters, all counted where ``span`` is None, or estimated from a sample of them: those
        in the ``span`` of ids (`id_range`, `_owners_sample`), tested by the filters' links in
        that range (`Filter.spanned`)."""
        linked = [f.linked for f in self.filters if f is not tag and f.linked is not None]
        assert tag.walked is not None
        tested = (*self.link_owners, *self.on_assets, *linked)
        where = (tag.walked, *tested)
        if not tested and (self.dialect == "sqlite" or span is not None):
            total = Total(size, "exact" if self.dialect == "sqlite" else "estimate")
            return Plan(where, total, _WALKED_ASSETS)
        source = _WALKED_ASSETS if self.on_assets else WALKED
        if span is None:
            return Plan(where, _tally(_counts(source, (tag.walked,), tested)), _WALKED_ASSETS)
        spanned = [f.spanned for f in self.filters if f is not tag and f.spanned is not None]
        within = (tag.walked, *self.link_owners, *_IN_SPAN)
        counts = _sample_counts(source, within, (*self.on_assets, *spanned), self.dialect)
        bounds = {"span_low": span[0], "span_high": span[1]}
        return Plan(where, _tally(counts, size), _WALKED_ASSETS, bounds)

    async def _owners_sample(
        self, db: AsyncConnection, tag: Filter
    ) -> tuple[int, tuple[str, str] | None]:
        """A key's links of ``tag``, past `TOTAL_EXACT_UP_TO`: about how many, and the range of
        ids of a sample of them. The sample is the owner's first `SAMPLE` links by asset id (off
        their index): ids are random, so they are a fair sample, and the id the last of them
        reached says how many there are (the (k-1)/u estimate of the k-th of n uniform values,
        u); their number alone would take a count of them all. A key with a small share of a tag
        gets as good a sample as one with most of it, where a range of the tag's ids held few
        of the key's links. None for the range (they are all counted) where the owner has fewer
        than `SAMPLE`, or where ids are not random hex (an asset made outside the API)."""
        assert tag.walked is not None
        last_of = _owners_last(tag.walked, tuple(self.link_owners), SAMPLE)
        last = (await db.execute(last_of, self.values)).scalar()
        try:
            reached = (int(last, 16) + 1) / _ID_SPACE
        except (TypeError, ValueError):  # fewer links, or ids not `models.new_id`'s: counted
            return TOTAL_EXACT_UP_TO, None
        return round((SAMPLE - 1) / reached), ("", last + "0")

    def _owned(self, tag: Filter) -> int | None:
        """A tag filter's links of the page's owner (`Asked.owned`); None: it has none."""
        owned = self.asked.owned if self.asked is not None else None
        if owned is None or tag.tag is None:
            return None
        return owned.get(self.values[tag_key(tag.tag)], 0)

    def _asked_sizes(self, found: Sequence[Filter]) -> list[list[int]] | None:
        """`_sizes`, as `tags_asked` read them with the tags (SQLite, to the plan's cap), where
        it read each one: a tag's links; a search's names holding it, then the links of the
        tags holding it (its parts, `search_filter`)."""
        asked = self.asked
        if asked is None or asked.links is None:
            return None
        sizes = []
        for f in found:
            if f.tag is not None:  # none for a tag that does not exist
                sizes.append([asked.links.get(self.values[tag_key(f.tag)], 0)])
                continue
            if asked.named is None or asked.term_tags is None:
                return None
            tagged = [sum(asked.links[t] for t in asked.term_tags)] if asked.term_tags else []
            if len(f.parts) != 1 + len(tagged):
                return None
            sizes.append([asked.named, *tagged])
        return sizes

    async def _sizes(
        self, db: AsyncConnection, found: Sequence[Filter], cap: int | None = TOTAL_EXACT_UP_TO
    ) -> list[list[int]]:
        """How many ids each part of each filter finds: PostgreSQL's planner's estimates; on
        SQLite counted, up to ``cap`` + 1 each (None: all), in one statement."""
        if self.dialect == "postgresql":
            queries = _parts_rows(tuple(found))
            planned = iter(await planned_rows_each(db, queries, self.values))
            return [[next(planned) for _ in f.parts] for f in found]
        row = (await db.execute(_parts_counted(tuple(found), cap), self.values)).one()
        numbers = iter(row)
        return [[next(numbers) for _ in f.parts] for f in found]

    async def _sampled(
        self,
        db: AsyncConnection,
        probes: tuple[ColumnElement[bool], ...],
        driver: Filter,
        others: tuple[ColumnElement[bool], ...],
    ) -> Plan:
        """SQLite's estimate: the driver's whole size, times the share of a sample spread over
        its ids that pass the other conditions."""
        sizes = (await self._sizes(db, [driver], None))[0]
        counts = _sample_counts(Asset, (driver.sampled,), (*self.base, *others), self.dialect)
        return Plan(probes, _tally(counts, sum(sizes)), values=sample_values(sizes))


@built_once
def _parts_rows(found: tuple[Filter, ...]) -> tuple[Select[Any], ...]:
    return tuple(_rows(p.ids) for f in found for p in f.parts)


@built_once
def _parts_counted(found: tuple[Filter, ...], cap: int | None) -> Select[Any]:
    """Each part's size: its counter, or its rows counted up to ``cap`` + 1."""
    counts = [
        select(func.coalesce(p.size.scalar_subquery(), 0))
        if p.size is not None
        else _count_up_to(p.rows, cap)
        for f in found
        for p in f.parts
    ]
    return select(*(c.scalar_subquery() for c in counts))


def _count_up_to(rows: Select[Any], cap: int | None) -> Select[Any]:
    """A count of ``rows`` that stops past ``cap`` + 1 (None: all of them)."""
    return select(func.count()).select_from(
        _rows(rows if cap is None else rows.limit(cap + 1)).subquery()
    )


@built_once
def _counts(
    source: Any, within: tuple[ColumnElement[bool], ...], passing: tuple[ColumnElement[bool], ...]
) -> tuple[ColumnElement[int]]:
    """How many rows of ``source`` that meet ``within`` also meet ``passing``: a count for a
    `_tally`."""
    # A subquery of its own, not of the page's rows, though the page reads the same tables.
    rows = select(func.count()).select_from(source).where(*within).correlate(None)
    return (rows.where(*passing).scalar_subquery(),)


@built_once
def _sample_counts(
    source: Any,
    within: tuple[ColumnElement[bool], ...],
    passing: tuple[ColumnElement[bool], ...],
    dialect: str,
) -> tuple[ColumnElement[Any]]:
    """How many rows of ``source`` meet ``within`` (a sample), and how many of them also meet
    ``passing``, in one read of them: a pair (a JSON array) for a `_tally` of a sample."""
    pair = func.json_build_array if dialect == "postgresql" else func.json_array
    passed = func.count().filter(and_(*passing)) if passing else func.count()
    both = pair(passed, func.count(), type_=JSON)
    return (select(both).select_from(source).where(*within).correlate(None).scalar_subquery(),)


def _tally(counts: tuple[ColumnElement[Any]], size: int | None = None) -> Tally:
    """The total of `_counts`, the rows that passed, where ``size`` is None (they are all the
    rows); else of `_sample_counts` of a sample of ``size`` rows, which the share of them that
    pass scales (an estimate)."""
    total: Callable[[Sequence[Any]], Total]
    if size is None:
        total = lambda counted: Total(counted[0], "exact")  # noqa: E731
    else:

        def total(counted: Sequence[Any]) -> Total:
            passed, sampled = counted[0]
            return Total(round(size * passed / sampled) if sampled else 0, "estimate")

    return Tally(counts, total)


def id_range(size: int) -> tuple[str, str] | None:
    """A range of asset ids that holds about `SAMPLE` of ``size`` assets; None for every id,
    where ``size`` is up to `TOTAL_EXACT_UP_TO` (they are then all counted). Ids are random (32
    hex digits, `models.new_id`), so the assets in it are a fair sample of them, whatever their
    age; the same range each time, so a total does not change from page to page."""
    if size <= TOTAL_EXACT_UP_TO:
        return None
    width = min(_ID_SPACE, _ID_SPACE * SAMPLE // size)
    low = (_ID_SPACE - width) // 2
    return f"{low:032x}", f"{low + width:032x}" if low + width < _ID_SPACE else "g"


def _rows(query: Select[Any]) -> Select[Any]:
    """A select of 1 per row of ``query``."""
    return query.with_only_columns(literal(1))
