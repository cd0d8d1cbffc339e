"""Pages read off an index: keyset cursors, and totals that stop counting.

A cursor names the last row of a page by its sort keys, as the database computed them, so the
next page starts right after it on the index that matches the order: as fast at depth 50,000 as
on the first page, and stable while rows are added (a row added meanwhile lands before or after
the cursor; none is shown twice or skipped). ``page`` (OFFSET) paging stays for jumps: the
rows it skips are read for their sort keys alone, and the page after the last of them as after a
cursor.

A total is counted exactly up to `TOTAL_EXACT_UP_TO` matches; past it the count stops and the
page says so (`TotalKind`): PostgreSQL's planner gives an estimate, SQLite only "more than".
PostgreSQL's planner is asked first, so a library of a million assets is not counted up to the
threshold on every page.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, NamedTuple

from sqlalchemy import (
    ColumnElement,
    DateTime,
    FromClause,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    false,
    func,
    literal,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.visitors import InternalTraversal

from sweedle_core.db.shapes import built_once
from sweedle_core.errors import InvalidCursor

TOTAL_EXACT_UP_TO = 10_000
_PLANNED_PAST = 10  # times the threshold: a planner's estimate that is taken without counting
# Characters: a cursor holds a few keys, the longest a lower-cased name of up to 255 characters
# (4 bytes each in UTF-8, a third more in base64).
CURSOR_MAX = 2_048
_INT_RANGE = range(-(2**31), 2**31)  # an integer key's column holds no other (PostgreSQL int4)
TotalKind = Literal["exact", "estimate", "more_than"]
Values = Mapping[str, Any]  # a statement's bound values, by name (`shapes`)
_NONE: Values = {}


class Total(NamedTuple):
    matches: int
    kind: TotalKind


@dataclass(frozen=True)
class Order:
    """A sort: ``keys`` all ascending or all descending, the last one unique (the id).

    ``nulls_last``: the first key may be NULL; those rows come after the others (either way),
    ordered by the remaining keys. The index that serves it leads with ``keys[0] IS NULL``.
    """

    name: str  # what a cursor was made for ("created:desc"); another order's cursor is refused
    keys: tuple[Any, ...]
    descending: bool
    nulls_last: bool = False
    # The filters a cursor was made under (a digest): a cursor is refused under others, where
    # the row it names says nothing of where the page would be.
    scope: str = ""

    def clauses(self) -> tuple[Any, ...]:
        return _clauses(self.keys, self.descending, self.nulls_last)

    def after(
        self, values: Sequence[Any], dialect: str
    ) -> tuple[tuple[tuple[tuple[Any, ...], tuple[Any, ...]], ...], Values]:
        """The rows after the row with sort keys ``values``: (conditions, order) per run of rows,
        each a range on its index, read in turn (two where NULL keys come last); and the values
        of the conditions' parameters."""
        runs = _runs_after(self.keys, self.descending, self.nulls_last, dialect, values[0] is None)
        return runs, {name: value for name, value in zip(_AFTER, values, strict=False)}


_AFTER = [f"_after_{i}" for i in range(8)]  # a cursor's keys, as parameters


@built_once
def _clauses(keys: tuple[Any, ...], descending: bool, nulls_last: bool) -> tuple[Any, ...]:
    way = [k.desc() if descending else k.asc() for k in keys]
    return (keys[0].is_(None), *way) if nulls_last else tuple(way)


@built_once
def _runs_after(
    keys: tuple[Any, ...], descending: bool, nulls_last: bool, dialect: str, first_null: bool
) -> tuple[tuple[tuple[Any, ...], tuple[Any, ...]], ...]:
    """`Order.after`'s runs, for the keys bound as `_AFTER` names them."""
    bound = [bindparam(name, type_=key.type) for name, key in zip(_AFTER, keys, strict=False)]
    way = _clauses(keys, descending, nulls_last)
    if not nulls_last:
        return (((_beyond(list(keys), bound, descending),), way),)
    # Each run is one value of the NULL key, which leads the index. ``IS FALSE``, not ``=
    # false``, which PostgreSQL rewrites to ``IS NOT NULL``, a clause that no longer names
    # that index column; and PostgreSQL needs the key in the ORDER BY to match the index,
    # where SQLite, given it, sorts. In the NULL run the id's bound filters: the NULL key
    # stands before it in the index.
    if dialect == "sqlite":
        way = way[1:]
    missing = keys[0].is_(None)
    rest = (missing.is_(true()),)
    if first_null:
        return (((*rest, _beyond(list(keys[1:]), bound[1:], descending)), way),)
    beyond = _beyond(list(keys), bound, descending)
    return (((missing.is_(false()), beyond), way), (rest, way))


@dataclass(frozen=True)
class Page:
    items: Sequence[Any]
    total: int
    total_kind: TotalKind
    page: int | None  # None for a page found by cursor
    page_size: int
    next_cursor: str | None

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))


@dataclass(frozen=True)
class Tally:
    """A total counted by the page's own first statement, not a statement of its own: its
    ``counts`` (scalar subqueries, each run once per statement; built once, `shapes`) follow
    each row, and ``total`` makes a `Total` of their values."""

    counts: tuple[ColumnElement[Any], ...]
    total: Callable[[Sequence[Any]], Total]

    async def alone(self, db: AsyncSession | AsyncConnection, values: Values = _NONE) -> Total:
        """Counted by a statement of its own (where the page read no row to carry it)."""
        return self.total(tuple((await db.execute(_selected(self.counts), values)).one()))


async def read_page(
    db: AsyncSession | AsyncConnection,
    model: Any,
    conditions: Sequence[ColumnElement[bool]],
    order: Order,
    page: int | None,
    page_size: int,
    cursor: str | None,
    counted: Sequence[ColumnElement[bool]] | Total | Tally | None = None,
    source: FromClause | None = None,
    rows_of: Select[Any] | None = None,
    values: Values = _NONE,
) -> Page:
    """Page ``page`` (default: the first) of the ``model`` rows meeting ``conditions`` in
    ``order``, or the page after ``cursor``; one row more than the page is read, to know whether
    a next page exists. The total counts the rows meeting ``counted`` (the same rows, asked
    another way; default: ``conditions``), or is ``counted`` where known or tallied. ``source``:
    the rows are read from it (a join holding ``order``'s keys). ``rows_of``: each item is a row
    of its (named) columns instead of a ``model`` instance, and ``db`` may be a connection (rows
    as SQL gives them, without an ORM session's set-up of each statement and result); each row
    holds the order's keys after them (``_order_key_<i>``), and the first statement's rows a
    tally's counts (``_count_<i>``), so rows of one page may differ in width.
    ``values``: those of the conditions' and counts' parameters. The statements are built once
    per shape (`shapes`): the conditions, counts and source given should be too."""
    if cursor is not None and page is not None:
        raise InvalidCursor("give page or cursor, not both")
    if counted is None:
        counted = conditions
    if not isinstance(counted, Total | Tally) and dialect_of(db) == "sqlite":
        counted = await counting(db, model, counted, values)  # a Tally: SQLite has no planner
    counts = _labeled(counted.counts if isinstance(counted, Tally) else ())
    rows = _of_model(model) if rows_of is None else rows_of
    chosen, keys = _chosen(rows, order.keys, tuple(conditions), source)
    # Each row: the item's own columns, the order's keys, then the tally's counts if any.
    width = 1 if rows_of is None else len(rows.selected_columns)
    offset = ((page or 1) - 1) * page_size
    tallied: Sequence[Any] | None = None
    if cursor is not None:
        after = decode_cursor(cursor, order)
        rows_read = await _after(db, chosen, order, after, page_size, counts, values)
    elif offset:
        # The rows a jump skips are read for their keys alone (PostgreSQL computes a row's
        # columns before OFFSET drops it, each asset's tags among them: page 2,000 took 0.7 s
        # at a million), and the page is read as the one after the last of them.
        skipped = _skipping(chosen, keys, counts, order.clauses())
        last = (await db.execute(skipped, {**values, "_skip": offset - 1})).first()
        if last is None:
            rows_read = []
        else:
            tallied = last[len(keys) :]
            rows_read = await _after(db, chosen, order, last[: len(keys)], page_size, (), values)
    else:
        first = _run(chosen, (), order.clauses(), page_size + 1, counts)
        rows_read = list((await db.execute(first, values)).all())
    if tallied is None and rows_read:
        tallied = rows_read[0][width + len(keys) :]
    shown = rows_read[:page_size]
    following = None
    if len(rows_read) > page_size:
        following = encode_cursor(order, shown[-1][width : width + len(keys)])
    # The rows of the result up to the last one read (those before a cursor are not known).
    seen = len(rows_read) + (offset if cursor is None else 0)
    if cursor is None and following is None and (shown or not offset):
        total = Total(seen, "exact")  # the result ends on this page
    else:
        if not isinstance(counted, Total | Tally):  # PostgreSQL: its planner asked first
            counted = await counting(db, model, counted, values)
        if isinstance(counted, Total):
            total = counted
        else:
            total = counted.total(tallied) if tallied else await counted.alone(db, values)
    # An estimate is never below the rows a client has seen, and one more if a page follows.
    if total.kind != "exact" and total.matches < seen:
        total = Total(seen, total.kind)
    items = [r[0] for r in shown] if rows_of is None else shown
    return Page(items, *total, None if cursor else page or 1, page_size, following)


async def _after(
    db: AsyncSession | AsyncConnection,
    chosen: Select[Any],
    order: Order,
    keys: Sequence[Any],
    page_size: int,
    counts: tuple[ColumnElement[Any], ...],
    values: Values,
) -> list[Any]:
    """Up to a page and one more of ``chosen``'s rows after the row whose sort keys are
    ``keys``, each run of `Order.after` read in turn; ``counts`` (a `Tally`'s) follow each row
    until a run has read one."""
    rows: list[Any] = []
    runs, bound = order.after(keys, dialect_of(db))
    for extra, way in runs:
        statement = _run(chosen, extra, way, page_size + 1 - len(rows), () if rows else counts)
        rows += (await db.execute(statement, {**values, **bound})).all()
        if len(rows) > page_size:
            break
    return rows


@built_once
def _of_model(model: Any) -> Select[Any]:
    return select(model)


@built_once
def _chosen(
    rows: Select[Any], keys: tuple[Any, ...], conditions: tuple[Any, ...], source: Any
) -> tuple[Select[Any], tuple[Any, ...]]:
    """``rows`` meeting ``conditions``, read from ``source``, with the order's ``keys`` after
    their columns (named apart from them); and those keys, labelled."""
    labeled = tuple(key.label(f"_order_key_{i}") for i, key in enumerate(keys))
    chosen = rows.add_columns(*labeled).where(*conditions)
    return (chosen if source is None else chosen.select_from(source)), labeled


@built_once
def _labeled(counts: tuple[ColumnElement[Any], ...]) -> tuple[Any, ...]:
    return tuple(c.label(f"_count_{i}") for i, c in enumerate(counts))


@built_once
def _skipping(
    chosen: Select[Any], keys: tuple[Any, ...], counts: tuple[Any, ...], way: tuple[Any, ...]
) -> Any:
    """The last row a jump skips (``_skip`` rows before it), its keys and counts alone."""
    skipped = chosen.with_only_columns(*keys, *counts).order_by(*way)
    return skipped.offset(bindparam("_skip", type_=Integer)).limit(1)


@built_once
def _run(
    chosen: Select[Any],
    extra: tuple[Any, ...],
    way: tuple[Any, ...],
    limit: int,
    counts: tuple[Any, ...],
) -> Any:
    """Up to ``limit`` of ``chosen``'s rows meeting ``extra`` too, in the order ``way``, with
    ``counts`` after each."""
    return chosen.where(*extra).order_by(*way).limit(limit).add_columns(*counts)


@built_once
def _selected(columns: tuple[ColumnElement[Any], ...]) -> Select[Any]:
    return select(*columns)


async def counting(
    db: AsyncSession | AsyncConnection,
    model: Any,
    conditions: Sequence[ColumnElement[bool]],
    values: Values = _NONE,
) -> Total | Tally:
    """How many rows meet ``conditions``: exact up to `TOTAL_EXACT_UP_TO`, beyond it the
    planner's estimate (PostgreSQL) or the threshold itself, "more than" (SQLite); a `Tally`
    where the rows are counted. PostgreSQL's planner is asked first: where it expects many times
    the threshold (a table's statistics rarely err so far) its estimate stands, and the count
    does not read the threshold's rows."""
    if dialect_of(db) == "postgresql":
        estimate = await planned_rows(db, rows_meeting(model, tuple(conditions)), values)
        if estimate > _PLANNED_PAST * TOTAL_EXACT_UP_TO:
            return Total(estimate, "estimate")
        return tallied(model, conditions, estimate)
    return tallied(model, conditions)


def tallied(
    model: Any, conditions: Sequence[ColumnElement[bool]], estimate: int | None = None
) -> Tally:
    """The rows meeting ``conditions`` counted in the page's statement up to
    `TOTAL_EXACT_UP_TO`; past it, a planner's ``estimate`` where one is given, else "more than"
    the limit. Without a planner's say, for rows a driver bounds (`filters.AssetFilters.plan`)."""

    def total(counts: Sequence[int]) -> Total:
        (counted,) = counts
        if counted <= TOTAL_EXACT_UP_TO:
            return Total(counted, "exact")
        if estimate is not None:
            return Total(max(estimate, TOTAL_EXACT_UP_TO + 1), "estimate")
        return Total(TOTAL_EXACT_UP_TO, "more_than")

    matching = rows_meeting(model, tuple(conditions))
    return Tally(_capped_count(matching, TOTAL_EXACT_UP_TO), total)


@built_once
def rows_meeting(model: Any, conditions: tuple[ColumnElement[bool], ...]) -> Select[Any]:
    """A select of 1 per ``model`` row meeting ``conditions``."""
    return select(literal(1)).select_from(model).where(*conditions)


@built_once
def _capped_count(matching: Select[Any], cap: int) -> tuple[ColumnElement[int]]:
    capped = matching.limit(cap + 1).subquery()
    return (select(func.count()).select_from(capped).correlate(None).scalar_subquery(),)


async def planned_rows(
    db: AsyncSession | AsyncConnection, query: Select[Any], values: Values = _NONE
) -> int:
    """The rows PostgreSQL's planner expects ``query`` to return (EXPLAIN, not run)."""
    return int((await _plan(db, query, values))["Plan Rows"])


async def planned_rows_each(
    db: AsyncSession | AsyncConnection, queries: Sequence[Select[Any]], values: Values = _NONE
) -> list[int]:
    """`planned_rows` of each of ``queries``, from one EXPLAIN (one trip to the server): of a
    statement holding each as a subquery of its own, whose plan holds each one's plan as it
    would be alone (an InitPlan, numbered in the order of the statement's columns; not under a
    count, which PostgreSQL may split among parallel workers, each with its share of the rows).
    EXPLAIN plans, and runs nothing: each subquery may have many rows."""
    if len(queries) == 1:
        return [await planned_rows(db, queries[0], values)]
    init_plans = (await _plan(db, _each(tuple(queries)), values))["Plans"]
    # Named "InitPlan 1 (returns $0)" (PostgreSQL 15) or "InitPlan 1" (17).
    numbered = sorted(init_plans, key=lambda p: int(p["Subplan Name"].split()[1]))
    return [int(plan["Plan Rows"]) for plan in numbered]


@built_once
def _each(queries: tuple[Select[Any], ...]) -> Select[Any]:
    return select(*(q.scalar_subquery() for q in queries))


async def _plan(
    db: AsyncSession | AsyncConnection, query: Select[Any], values: Values
) -> dict[str, Any]:
    """The top node of PostgreSQL's plan for ``query``."""
    plan = (await db.execute(_explained(query), values)).scalar_one()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return plan[0]["Plan"]


@built_once
def _explained(query: Select[Any]) -> _Explain:
    return _Explain(query)


def dialect_of(db: AsyncSession | AsyncConnection) -> str:
    return (db.get_bind() if isinstance(db, AsyncSession) else db).dialect.name


class _Explain(Executable, ClauseElement):
    """``EXPLAIN (FORMAT JSON)`` of a query, compiled (and cached) as the query itself is, with
    its parameters bound by the driver."""

    inherit_cache = True
    _traverse_internals = [("query", InternalTraversal.dp_clauseelement)]

    def __init__(self, query: Select[Any]) -> None:
        self.query = query


@compiles(_Explain)
def _explain(element: _Explain, compiler: Any, **kw: Any) -> str:
    # Compiled as if inside another statement: its columns are not the EXPLAIN's result.
    compiler.stack.append(
        {"correlate_froms": set(), "asfrom_froms": set(), "selectable": element.query}
    )
    try:
        return "EXPLAIN (FORMAT JSON) " + compiler.process(element.query, **kw)
    finally:
        compiler.stack.pop()


def encode_cursor(order: Order, values: Sequence[Any]) -> str:
    keys = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    data = {"o": order.name, "f": order.scope, "k": keys}
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str, order: Order) -> list[Any]:
    """The sort keys ``cursor`` holds, checked against ``order``; `InvalidCursor` if it was not
    made by `encode_cursor` for this order, or holds a value its key's column cannot."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        made_for, scope, values = data["o"], data["f"], data["k"]
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise InvalidCursor(_FOREIGN) from None
    if made_for != order.name:
        raise InvalidCursor(
            f"the cursor is for the order {made_for!r}, not {order.name!r}: "
            "sort as when it was given, or start again without it"
        )
    if scope != order.scope:
        raise InvalidCursor(
            "the cursor was given for other filters: ask with the same search, tags and "
            "filters as when it was given, or start again without it"
        )
    if not isinstance(values, list) or len(values) != len(order.keys):
        raise InvalidCursor(_FOREIGN)
    return [_key_value(key, value, order) for key, value in zip(order.keys, values, strict=True)]


_FOREIGN = "the cursor is not one this server gave out"


def _key_value(key: Any, value: Any, order: Order) -> Any:
    """``value`` as ``key``'s column holds it; `InvalidCursor` if it cannot be one."""
    if value is None and order.nulls_last and key is order.keys[0]:
        return None
    if isinstance(key.type, DateTime) and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:  # SQLite's: written in UTC
                return moment.replace(tzinfo=timezone.utc)
            return moment.astimezone(timezone.utc)
        except (ValueError, OverflowError):
            pass
    elif isinstance(key.type, Integer):
        if isinstance(value, int) and not isinstance(value, bool) and value in _INT_RANGE:
            return value
    elif isinstance(key.type, String) and isinstance(value, str):
        return value
    raise InvalidCursor(_FOREIGN)


def _beyond(keys: list[Any], bound: Sequence[Any], descending: bool) -> ColumnElement[bool]:
    """The rows whose ``keys`` sort after ``bound`` (their parameters): a row-value comparison
    (PostgreSQL reads it as a range on the index that leads with those keys), with the first
    key's bound beside it (SQLite ranges over an expression index, such as lower(name), only
    so)."""
    if len(keys) == 1:
        return keys[0] < bound[0] if descending else keys[0] > bound[0]
    if descending:
        return and_(keys[0] <= bound[0], tuple_(*keys) < tuple_(*bound))
    return and_(keys[0] >= bound[0], tuple_(*keys) > tuple_(*bound))
