"""The asset library: finding, sorting, editing, tagging and deleting assets, and job history.

Every read takes ``sees``: the owner whose rows a caller may see (None: every owner's, for an
admin key or a service without keys). Another owner's row is reported as not found, so ids of
other keys' assets are not even confirmed to exist.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Select,
    String,
    bindparam,
    delete,
    func,
    inspect,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sweedle_core.access.keys import may_see
from sweedle_core.db.filters import (
    WALKED,
    Asked,
    AssetFilters,
    search_filter,
    size_cap,
    tag_filter,
    tag_key,
    tags_asked,
    term_tags,
    walks_links,
)
from sweedle_core.db.models import Asset, GenerationJob, Tag, asset_tags, utcnow
from sweedle_core.db.paging import Order, Page, read_page
from sweedle_core.db.removals import record_removal
from sweedle_core.db.search import TRIGRAM, comparison, term_values
from sweedle_core.errors import AssetNotFound, InvalidTag, JobNotFound
from sweedle_core.jobs.states import ACTIVE, JobStage

_ACTIVE = [s.value for s in ACTIVE]
# Stages of a job that has not reached a generator yet (what a key's waiting limit counts).
_BEFORE_GENERATION = [
    s.value for s in (JobStage.QUEUED, JobStage.PREPROCESSING, JobStage.WAITING_FOR_GPU)
]
SortBy = Literal["created", "name", "vertex_count"]
SortOrder = Literal["asc", "desc"]
TAG_MAX = 64
_TAG_SPACES = re.compile(r"\s+")
_TAG_ALLOWED = re.compile(r"^[\w.:+-]+$")


def normalize_tag(name: str) -> str:
    """A tag as it is stored: Unicode NFKC, trimmed, lower case, spaces as single dashes.

    "  Low Poly " and "low-poly" are one tag.
    """
    tag = _TAG_SPACES.sub("-", unicodedata.normalize("NFKC", name).strip().lower())
    if not tag:
        raise InvalidTag("a tag is empty")
    if len(tag) > TAG_MAX:
        raise InvalidTag(f"tag {tag[:20]!r}... is longer than {TAG_MAX} characters")
    if not _TAG_ALLOWED.match(tag):
        raise InvalidTag(
            f"tag {tag!r} may hold only letters, digits and . : + - _ (spaces become dashes)"
        )
    return tag


def normalize_tags(names: Sequence[str]) -> list[str]:
    """Normalised, without duplicates, in the order given."""
    return list(dict.fromkeys(normalize_tag(n) for n in names))


@dataclass(frozen=True)
class AssetQuery:
    page: int | None = None  # the first by default; not with a cursor
    page_size: int = 20
    search: str | None = None  # in the name and the tags, matched literally
    source_type: str | None = None
    status: str | None = None
    tags: Sequence[str] = field(default_factory=tuple)  # every one of them
    sort_by: SortBy = "created"
    sort_order: SortOrder = "desc"
    owner: str | None = None  # one key's assets (for an admin key; others see only their own)
    cursor: str | None = None  # the page after the one that gave it (`paging`), instead of page


@dataclass(frozen=True)
class JobQuery:
    page: int | None = None
    page_size: int = 20
    status: Sequence[str] = field(default_factory=tuple)
    created_after: datetime | None = None
    created_before: datetime | None = None
    asset_id: str | None = None
    owner: str | None = None
    cursor: str | None = None


class AssetLibrary:
    def __init__(
        self, engine: AsyncEngine, sessions: async_sessionmaker, autocommit_reads: bool = False
    ) -> None:
        self.sessions = sessions
        self.dialect = engine.dialect.name  # searches take its trigram index (`search`)
        # Pages are read as rows on a connection (`find`); with ``autocommit_reads`` (PostgreSQL
        # connected directly) each statement commits on its own, as READ COMMITTED gives each
        # its own snapshot anyway: no BEGIN and ROLLBACK around a page's reads, two trips.
        self.reader = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if autocommit_reads else engine
        )

    # --- assets -------------------------------------------------------------------------

    async def get(self, asset_id: str, sees: str | None) -> Asset:
        async with self.sessions() as session:
            asset = await session.get(Asset, asset_id)
        if asset is None or not may_see(sees, asset.owner):
            raise AssetNotFound(f"no asset with id {asset_id!r}")
        return asset

    async def find(self, query: AssetQuery, sees: str | None) -> Page:
        """A page of assets, as rows (`_page_rows`), read on a connection: no ORM session,
        whose set-up of each statement and result cost more than the statements' own work."""
        async with self.reader.connect() as db:
            names = normalize_tags(query.tags)
            walks = walks_links(query.sort_by in LINK_ORDERS, bool(names))
            # The owner of a walk's links: its links of each tag are counted.
            owner = (sees if sees is not None else query.owner) if walks else None
            cap = size_cap(walks)
            asked = await tags_asked(db, names, query.search, self.dialect, cap, owner)
            filters = _asset_filters(query, sees, self.dialect, asked)
            plan = await filters.plan(db, walks)
            values = {**filters.values, **plan.values}
            order = _asset_order(query)
            if plan.source is not None:  # the same order and cursors, read off a tag's links
                order = replace(order, keys=LINK_ORDERS[query.sort_by])
            return await read_page(
                db,
                Asset,
                plan.where,
                order,
                query.page,
                query.page_size,
                query.cursor,
                plan.counted,
                plan.source,
                _page_rows(self.dialect),
                values,
            )

    async def edit(
        self,
        asset_id: str,
        sees: str | None,
        *,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Asset:
        """Change an asset's name, its tags (the whole set) or its metadata (the whole object)."""
        wanted = normalize_tags(tags) if tags is not None else None
        try:
            await self._edit(asset_id, sees, name, wanted, metadata)
        except IntegrityError:
            # Another request created one of the new tags meanwhile: it exists now.
            await self._edit(asset_id, sees, name, wanted, metadata)
        return await self.get(asset_id, sees)

    async def _edit(
        self,
        asset_id: str,
        sees: str | None,
        name: str | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
    ) -> None:
        async with self.sessions.begin() as session:
            asset = await session.get(Asset, asset_id, with_for_update=True)
            if asset is None or not may_see(sees, asset.owner):
                raise AssetNotFound(f"no asset with id {asset_id!r}")
            if name is not None:
                asset.name = name
            if metadata is not None:
                asset.metadata_ = metadata
            if tags is not None:
                asset.tags = await _tag_rows(session, tags)
            asset.updated_at = utcnow()

    async def delete(self, asset_id: str) -> bool:
        """Delete an asset's rows: its jobs, tag links, webhook log and idempotency keys go with
        it (ON DELETE CASCADE); its files are recorded as due for removal in the same
        transaction. False when it was already gone."""
        async with self.sessions.begin() as session:
            result = await session.execute(delete(Asset).where(Asset.id == asset_id))
            await record_removal(session, asset_id)
        return bool(result.rowcount)

    async def active_job_ids(self, asset_id: str) -> list[str]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(GenerationJob.id).where(
                    GenerationJob.asset_id == asset_id,
                    GenerationJob.status.in_(_ACTIVE),
                )
            )
            return list(rows.all())

    # --- tags ---------------------------------------------------------------------------

    async def tag_counts(self, sees: str | None) -> list[tuple[str, int]]:
        """Tags with the number of assets (that ``sees`` may see) carrying each: every tag
        for ``sees=None`` (an admin key, or no keys), else only the tags on the key's own
        assets (other keys' tag names are theirs)."""
        link = asset_tags.join(Asset, Asset.id == asset_tags.c.asset_id)
        counted = select(asset_tags.c.tag_id, func.count().label("n")).select_from(link)
        if sees is not None:
            counted = counted.where(Asset.owner == sees)
        counts = counted.group_by(asset_tags.c.tag_id).subquery()
        query = select(Tag.name, func.coalesce(counts.c.n, 0))
        if sees is None:
            query = query.outerjoin(counts, counts.c.tag_id == Tag.id)
        else:
            query = query.join(counts, counts.c.tag_id == Tag.id)
        async with self.sessions() as session:
            rows = await session.execute(query.order_by(Tag.name))
            return [(name, int(n)) for name, n in rows.all()]

    async def create_tag(self, name: str) -> tuple[str, bool]:
        """The normalised tag, and whether it was new."""
        tag = normalize_tag(name)
        try:
            async with self.sessions.begin() as session:
                existing = await session.scalar(select(Tag).where(Tag.name == tag))
                if existing is not None:
                    return tag, False
                session.add(Tag(name=tag))
        except IntegrityError:
            return tag, False  # created by another request meanwhile
        return tag, True

    # --- job history --------------------------------------------------------------------

    async def get_job(self, job_id: str, sees: str | None) -> GenerationJob:
        async with self.sessions() as session:
            job = await session.get(GenerationJob, job_id)
        if job is None or not may_see(sees, job.owner):
            raise JobNotFound(f"no generation job with id {job_id!r}")
        return job

    async def jobs(self, query: JobQuery, sees: str | None) -> Page:
        conditions, values = _given(
            _JOB_CONDITIONS,
            sees=sees,
            status=list(query.status) or None,
            created_after=query.created_after,
            created_before=query.created_before,
            asset_id=query.asset_id,
            owner=query.owner,
        )
        async with self.sessions() as session:
            return await read_page(
                session,
                GenerationJob,
                conditions,
                _job_order(query),
                query.page,
                query.page_size,
                query.cursor,
                values=values,
            )

    async def waiting_jobs(self, owner: str | None) -> int:
        """How many of ``owner``'s jobs (None: those without an owner) have not reached a
        generator yet: queued, being prepared or waiting for a GPU (for its waiting-jobs
        limit)."""
        async with self.sessions() as session:
            return await waiting_in(session, owner)


def _given(
    conditions: dict[str, ColumnElement[bool]], **values: Any
) -> tuple[list[ColumnElement[bool]], dict[str, Any]]:
    """The ``conditions`` (by the name of their parameter) whose value is given (not None),
    and those values."""
    given = {name: value for name, value in values.items() if value is not None}
    return [conditions[name] for name in given], given


# The job history's filters, by the name of their parameter (built once, `shapes`).
_JOB_CONDITIONS: dict[str, ColumnElement[bool]] = {
    "sees": GenerationJob.owner == bindparam("sees", type_=String),
    "status": GenerationJob.status.in_(bindparam("status", type_=String, expanding=True)),
    "created_after": GenerationJob.created_at >= bindparam("created_after", type_=DateTime(True)),
    "created_before": GenerationJob.created_at < bindparam("created_before", type_=DateTime(True)),
    "asset_id": GenerationJob.asset_id == bindparam("asset_id", type_=String),
    "owner": GenerationJob.owner == bindparam("owner", type_=String),
}


async def waiting_in(session: AsyncSession, owner: str | None) -> int:
    """`Library.waiting_jobs`, in ``session`` (inside the transaction that adds a job)."""
    count = await session.scalar(
        select(func.count())
        .select_from(GenerationJob)
        .where(
            GenerationJob.owner.is_(None) if owner is None else GenerationJob.owner == owner,
            GenerationJob.status.in_(_ACTIVE),
            GenerationJob.stage.in_(_BEFORE_GENERATION),
        )
    )
    return count or 0


def _asset_filters(query: AssetQuery, sees: str | None, dialect: str, asked: Asked) -> AssetFilters:
    given = {
        "sees": sees,
        "owner": query.owner,
        "source_type": query.source_type or None,
        "status": query.status or None,
    }
    base, values = _given(_BASE, **given)
    link_owners, _ = _given(_LINK_OWNERS, sees=sees, owner=query.owner)
    on_assets, _ = _given(_BASE, source_type=given["source_type"], status=given["status"])
    # Once per tag id: tags that do not exist are all -1, and each place's `tag_filter` is one
    # object, which the plan tells apart from the others by identity.
    found = []
    for place, tag_id in enumerate(dict.fromkeys(asked.ids)):
        found.append(tag_filter(place))
        values[tag_key(place)] = tag_id
    if query.search:
        term = query.search
        indexed, compared = len(term) >= TRIGRAM, comparison(term, dialect)
        found.append(search_filter(dialect, indexed, compared, term_tags(asked.term_tags)))
        values |= term_values(term, dialect)
        values["term_tags"] = asked.term_tags or []
    return AssetFilters(base, found, dialect, values, asked, link_owners, on_assets)


# The conditions on an asset's own columns, by the name of their parameter.
_BASE = {
    name: column == bindparam(name, type_=String)
    for name, column in [
        ("sees", Asset.owner),
        ("owner", Asset.owner),
        ("source_type", Asset.source_type),
        ("status", Asset.status),
    ]
}
# The owner conditions, for a page walked along a tag's links: on the link's copy (its index).
_LINK_OWNERS = {name: WALKED.c.owner == bindparam(name, type_=String) for name in ("sees", "owner")}


@functools.cache  # built once per dialect
def _page_rows(dialect: str) -> Select[Any]:
    """What a page reads of each asset: a row (no ORM instance), its columns named as the
    model's attributes (``metadata_``), and its tags as a JSON list in one more column, ``tags``
    (the ORM read them with a statement of their own; with its instances that was a third of a
    page's Python), both in tag id order, as on their own (`models.Asset.tags`). A select made
    once, which each page adds to (its columns are not made and checked again per page)."""
    own = asset_tags.join(Tag, Tag.id == asset_tags.c.tag_id)
    listed: ColumnElement[Any]
    if dialect == "postgresql":
        tag = func.json_build_object("id", Tag.id, "name", Tag.name)
        listed = func.coalesce(
            func.json_agg(tag, type_=JSON).aggregate_order_by(Tag.id), func.json_build_array()
        )
    else:  # SQLite reads an asset's links off their key, (asset_id, tag_id): in tag id order
        tag = func.json_object("id", Tag.id, "name", Tag.name)
        listed = func.json_group_array(tag, type_=JSON)
    tags = select(listed).select_from(own).where(asset_tags.c.asset_id == Asset.id)
    attributes = [a.columns[0].label(a.key) for a in inspect(Asset).column_attrs]
    return select(*attributes, tags.scalar_subquery().label("tags"))


_ASSET_KEYS = {
    "created": (Asset.created_at, Asset.id),
    "name": (func.lower(Asset.name, type_=String), Asset.id),
    "vertex_count": (Asset.vertex_count, Asset.id),
}
# The orders a tag's links hold too (`models.asset_tags`), in their keys there.
LINK_ORDERS = {
    "created": (WALKED.c.created_at, WALKED.c.asset_id),
    "name": (func.lower(WALKED.c.name, type_=String), WALKED.c.asset_id),
}


def _asset_order(query: AssetQuery) -> Order:
    """The page's order; each is matched by an index (`models`), on every database. Assets
    without a mesh yet have no vertex count: last either way (an IS NULL key orders them so on
    every database, and an index can match it; NULLS LAST cannot be indexed on SQLite)."""
    filters = [query.search, sorted(query.tags), query.source_type, query.status, query.owner]
    return Order(
        f"{query.sort_by}:{query.sort_order}",
        _ASSET_KEYS[query.sort_by],
        query.sort_order == "desc",
        nulls_last=query.sort_by == "vertex_count",
        scope=_digest(filters),
    )


def _job_order(query: JobQuery) -> Order:
    """Newest first; matched by an index (`models`)."""
    after, before = query.created_after, query.created_before
    filters = [sorted(query.status), str(after), str(before), query.asset_id, query.owner]
    keys = (GenerationJob.created_at, GenerationJob.id)
    return Order("jobs:created:desc", keys, True, scope=_digest(filters))


def _digest(filters: list[Any]) -> str:
    return hashlib.sha256(json.dumps(filters).encode()).hexdigest()[:16]


async def _tag_rows(session: AsyncSession, names: Sequence[str]) -> list[Tag]:
    """The Tag rows for ``names``, creating the missing ones."""
    if not names:
        return []
    existing = {t.name: t for t in await session.scalars(select(Tag).where(Tag.name.in_(names)))}
    for name in names:
        if name not in existing:
            existing[name] = Tag(name=name)
            session.add(existing[name])
    await session.flush()
    return [existing[n] for n in names]
