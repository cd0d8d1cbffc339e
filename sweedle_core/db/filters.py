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
count that stops past `TOTAL_EXACT_UP_TO` (read off the filter's own index), on PostgreSQL by
its planner's estimate (EXPLAIN), and drives by the smallest when it finds few (`DRIVE_UP_TO`),
else probes.

The total follows: exact when a driver bounds the matches to `TOTAL_EXACT_UP_TO`; beyond,
marked "estimate" (PostgreSQL's planner's; on SQLite the smallest driver's size times the share
of a sample spread over its ids that pass the other filters), or "more_than" for a filter
alone on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession

from sweedle_core.db.models import Asset, Tag, asset_tags
from sweedle_core.db.paging import TOTAL_EXACT_UP_TO, Total, planned_rows
from sweedle_core.db.search import NAME_KEY, TRIGRAM, holds, matching_names, named

# A driver finding this many ids or fewer leads the page: sorting them costs less than walking
# the order's index to the page's last match, which at 2,000 of a million (1 in 500) takes
# about 10,000 rows. Past it the walk is kept, though matches that all sit at the far end of the
# order (a tag only the oldest assets carry, newest first) make it read most of the index.
DRIVE_UP_TO = 2_000
SAMPLE = 1_000  # about as many ids of a driver's part tested against the other filters
TAG_IDS_MAX = 500  # a search's matching tags named by id; more are found by a subquery
# SQLite: the links in the order they were made.
_LINK_KEY: ColumnElement[int] = literal_column("asset_tags.rowid")


@dataclass(frozen=True)
class Part:
    """The ids of the assets one index finds."""

    ids: Select[Any]
    rows: Select[Any]  # as many rows as ``ids``, the cheapest to count (SQLite)
    key: Any  # an integer of each row that spreads them over time (SQLite), for a sample


@dataclass(frozen=True)
class Filter:
    """One search or tag filter in both forms: the probe, and the driver its parts make."""

    probe: ColumnElement[bool]
    parts: Sequence[Part]
    sized: bool = True  # False: no index finds it (a short term), so it never drives

    @property
    def driver(self) -> Select[Any]:
        # One IN over the union, not an OR of two: each part is read off its own index.
        if len(self.parts) == 1:
            return self.parts[0].ids
        return select(union(*(p.ids for p in self.parts)).subquery().c[0])

    def sample(self, sizes: Sequence[int]) -> Select[Any]:
        """About `SAMPLE` ids of each part (of ``sizes``), spread evenly over it: every n-th
        row, not the first ones, which are the oldest assets."""
        spread = [
            part.ids.where(part.key % max(1, size // SAMPLE) == 0)
            for part, size in zip(self.parts, sizes, strict=True)
        ]
        return spread[0] if len(spread) == 1 else select(union(*spread).subquery().c[0])


def tag_filter(name: str) -> Filter:
    """Assets carrying the tag ``name`` (normalised)."""
    tag_id = select(Tag.id).where(Tag.name == name).scalar_subquery()
    links = select(asset_tags.c.asset_id).where(asset_tags.c.tag_id == tag_id)
    probe = exists(links.where(asset_tags.c.asset_id == Asset.id))
    return Filter(probe, [Part(links, links, _LINK_KEY)])


def search_filter(term: str, dialect: str, tag_ids: Sequence[int] | None) -> Filter:
    """Assets whose name, or one of whose tags, holds ``term``, case-folded (`search.holds`).
    ``tag_ids``: the tags whose names hold it (`tags_holding`; None: too many to list)."""
    ids = named(term, dialect)
    # SQLite counts the FTS rows themselves; PostgreSQL's planner sizes the ids' own query.
    names = (
        Part(ids, matching_names(term), NAME_KEY) if dialect == "sqlite" else Part(ids, ids, None)
    )
    probe = holds(Asset.name, term, dialect)
    parts = [names]
    if tag_ids != []:
        tags = select(Tag.id).where(holds(Tag.name, term, dialect)) if tag_ids is None else tag_ids
        tagged = select(asset_tags.c.asset_id).where(asset_tags.c.tag_id.in_(tags))
        # A scalar subquery, not EXISTS: PostgreSQL would hash every link of those tags (a
        # hundred thousand) for each page, where one index probe per row walked is wanted.
        own = tagged.with_only_columns(literal(1)).where(asset_tags.c.asset_id == Asset.id)
        probe = or_(probe, own.limit(1).scalar_subquery().is_not(None))
        parts.append(Part(tagged, tagged, _LINK_KEY))
    return Filter(probe, parts, sized=len(term) >= TRIGRAM)


async def tags_holding(session: AsyncSession, term: str, dialect: str) -> list[int] | None:
    """The ids of the tags whose names hold ``term`` (a search looks in them too), read off
    the small tags table once so each asset is then matched by tag id; None past
    `TAG_IDS_MAX`, a list too long to send."""
    found = await session.scalars(
        select(Tag.id).where(holds(Tag.name, term, dialect)).limit(TAG_IDS_MAX + 1)
    )
    ids = list(found.all())
    return ids if len(ids) <= TAG_IDS_MAX else None


@dataclass(frozen=True)
class Plan:
    """What a library query asks: the page's WHERE, and the count's (or its total, known)."""

    where: list[Any]
    counted: list[Any] | Total


@dataclass(frozen=True)
class AssetFilters:
    """The conditions of one library query: ``base`` (owner, status, source: columns of the row)
    and the search and tag ``filters``."""

    base: Sequence[ColumnElement[bool]]
    filters: Sequence[Filter]
    dialect: str

    async def plan(self, session: AsyncSession) -> Plan:
        probes = [*self.base, *(f.probe for f in self.filters)]
        sizable = [f for f in self.filters if f.sized]
        if not sizable:
            return Plan(probes, probes)
        sized = zip(await self._sizes(session, sizable), sizable, strict=True)
        sizes, smallest = min(sized, key=lambda pair: sum(pair[0]))
        others = [f.probe for f in self.filters if f is not smallest]
        driven = [*self.base, Asset.id.in_(smallest.driver), *others]
        if sum(sizes) <= DRIVE_UP_TO:
            return Plan(driven, driven)
        if sum(sizes) <= TOTAL_EXACT_UP_TO:  # the driver bounds the count's work
            return Plan(probes, driven)
        if self.dialect == "postgresql":
            return Plan(probes, Total(await planned_rows(session, _rows(driven)), "estimate"))
        if not self.base and not others:  # alone: one part past the threshold is enough
            if max(sizes) > TOTAL_EXACT_UP_TO:
                return Plan(probes, Total(TOTAL_EXACT_UP_TO, "more_than"))
            return Plan(probes, driven)  # its parts are each under it: the count is bounded
        return Plan(probes, await self._sampled(session, smallest, others))

    async def _sizes(
        self, session: AsyncSession, found: Sequence[Filter], cap: int | None = TOTAL_EXACT_UP_TO
    ) -> list[list[int]]:
        """How many ids each part of each filter finds: PostgreSQL's planner's estimates; on
        SQLite counted, up to ``cap`` + 1 each (None: all), in one statement."""
        if self.dialect == "postgresql":
            return [[await planned_rows(session, _rows(p.ids)) for p in f.parts] for f in found]
        counts = [
            select(func.count()).select_from(
                _rows(p.rows if cap is None else p.rows.limit(cap + 1)).subquery()
            )
            for f in found
            for p in f.parts
        ]
        row = (await session.execute(select(*(c.scalar_subquery() for c in counts)))).one()
        numbers = iter(row)
        return [[next(numbers) for _ in f.parts] for f in found]

    async def _sampled(
        self, session: AsyncSession, driver: Filter, others: list[ColumnElement[bool]]
    ) -> Total:
        """SQLite's estimate: the driver's whole size, times the share of a sample spread over
        its ids that pass the other conditions."""
        sizes = (await self._sizes(session, [driver], None))[0]
        passing = and_(true(), *self.base, *others)
        counted = select(func.count(), func.count().filter(passing)).select_from(Asset)
        sampled, passed = (
            await session.execute(counted.where(Asset.id.in_(driver.sample(sizes))))
        ).one()
        return Total(round(sum(sizes) * passed / sampled) if sampled else 0, "estimate")


def _rows(where: Select[Any] | Sequence[ColumnElement[bool]]) -> Select[Any]:
    """A select of 1 per row: of ``where``'s rows, or of the assets meeting ``where``."""
    if isinstance(where, Select):
        return where.with_only_columns(literal(1))
    return select(literal(1)).select_from(Asset).where(*where)
