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
its planner's estimate (EXPLAIN), and drives by the smallest when it finds few
(`DRIVE_UP_TO`), else probes.

The total follows: exact when a driver bounds the matches to `TOTAL_EXACT_UP_TO`; beyond,
marked "estimate" (PostgreSQL's planner's; on SQLite the smallest driver's size times the share
of a sample of its ids that pass the other filters), or "more_than" for a filter alone on
SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, literal, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from sweedle_core.db.models import Asset, Tag, asset_tags
from sweedle_core.db.paging import TOTAL_EXACT_UP_TO, Total, planned_rows
from sweedle_core.db.search import TRIGRAM, matching_names, named

DRIVE_UP_TO = 2_000  # a driver that finds this many ids or fewer leads the page
SAMPLE = 1_000  # ids of each part of a driver tested against the other filters, to estimate


@dataclass(frozen=True)
class Filter:
    """One search or tag filter in both forms, and how to size its driver."""

    probe: ColumnElement[bool]
    parts: Sequence[Select[Any]]  # the ids of the assets it matches, each off its own index
    sizes: Sequence[Select[Any]]  # rows as many as each part's ids, the cheapest to count

    @property
    def driver(self) -> Select[Any]:
        # One IN over the union, not an OR of two: each part is read off its own index.
        if len(self.parts) == 1:
            return self.parts[0]
        return select(union(*self.parts).subquery().c[0])

    def sample(self, size: int) -> Select[Any]:
        """Up to ``size`` ids of each part (not of the union, which is found whole first)."""
        firsts = [select(part.limit(size).subquery().c[0]) for part in self.parts]
        return firsts[0] if len(firsts) == 1 else select(union(*firsts).subquery().c[0])


def tag_filter(name: str) -> Filter:
    """Assets carrying the tag ``name`` (normalised)."""
    tag_id = select(Tag.id).where(Tag.name == name).scalar_subquery()
    links = select(asset_tags.c.asset_id).where(asset_tags.c.tag_id == tag_id)
    return Filter(exists(links.where(asset_tags.c.asset_id == Asset.id)), [links], [links])


def search_filter(term: str, dialect: str, tag_ids: Sequence[int]) -> Filter:
    """Assets whose name, or one of whose tags (``tag_ids``: those whose names hold ``term``,
    see `tags_holding`), holds ``term``, case-folded; ``%``, ``_`` and quotes are plain
    characters."""
    probe = Asset.name.icontains(term, autoescape=True)
    parts = [named(term, dialect)]
    sizes = [matching_names(term) if dialect == "sqlite" else parts[0]]
    if tag_ids:
        tagged = select(asset_tags.c.asset_id).where(asset_tags.c.tag_id.in_(tag_ids))
        # A scalar subquery, not EXISTS: PostgreSQL would hash every link of those tags (a
        # hundred thousand) for each page, where one index probe per row walked is wanted.
        own = tagged.with_only_columns(literal(1)).where(asset_tags.c.asset_id == Asset.id)
        probe = or_(probe, own.limit(1).scalar_subquery().is_not(None))
        parts.append(tagged)
        sizes.append(tagged)
    if len(term) < TRIGRAM:
        sizes = []  # no index finds the names: never a driver
    return Filter(probe, parts, sizes)


async def tags_holding(session: AsyncSession, term: str) -> list[int]:
    """The ids of the tags whose names hold ``term`` (a search looks for it in them too): a
    few, read off the small tags table once, so each asset is then matched by tag id."""
    found = await session.scalars(select(Tag.id).where(Tag.name.icontains(term, autoescape=True)))
    return list(found.all())


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
        sizable = [f for f in self.filters if f.sizes]
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
        if not self.base and not others:  # alone: more than one part's ids is more than enough
            if max(sizes) > TOTAL_EXACT_UP_TO:
                return Plan(probes, Total(TOTAL_EXACT_UP_TO, "more_than"))
            return Plan(probes, driven)
        return Plan(probes, await self._sampled(session, smallest, others))

    async def _sizes(
        self, session: AsyncSession, found: Sequence[Filter], cap: int | None = TOTAL_EXACT_UP_TO
    ) -> list[list[int]]:
        """How many ids each part of each filter finds: PostgreSQL's planner's estimates; on
        SQLite counted, up to ``cap`` + 1 each (None: all), in one statement."""
        if self.dialect == "postgresql":
            return [[await planned_rows(session, _rows(rows)) for rows in f.sizes] for f in found]
        limited = [
            rows.limit(cap + 1) if cap is not None else rows for f in found for rows in f.sizes
        ]
        counts = [select(func.count()).select_from(_rows(rows).subquery()) for rows in limited]
        row = (await session.execute(select(*(c.scalar_subquery() for c in counts)))).one()
        numbers = iter(row)
        return [[next(numbers) for _ in f.sizes] for f in found]

    async def _sampled(
        self, session: AsyncSession, driver: Filter, others: list[ColumnElement[bool]]
    ) -> Total:
        """SQLite's estimate: the driver's whole size, times the share of a sample of its ids
        (`SAMPLE` of each part) that pass the other conditions."""
        size = sum((await self._sizes(session, [driver], None))[0])
        drawn = Asset.id.in_(driver.sample(SAMPLE))
        counted = select(func.count()).select_from(Asset)
        passed = await session.scalar(counted.where(drawn, *self.base, *others)) or 0
        if len(driver.parts) == 1:  # a part's ids are distinct: the sample is its first ones
            sampled = min(SAMPLE, size)
        else:
            sampled = await session.scalar(counted.where(drawn)) or 0
        return Total(round(size * passed / sampled) if sampled else 0, "estimate")


def _rows(where: Select[Any] | Sequence[ColumnElement[bool]]) -> Select[Any]:
    """A select of 1 per row: of ``where``'s rows, or of the assets meeting ``where``."""
    if isinstance(where, Select):
        return where.with_only_columns(literal(1))
    return select(literal(1)).select_from(Asset).where(*where)
