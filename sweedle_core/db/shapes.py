"""Statements built once per shape, run with each request's values.

SQLAlchemy compiles a statement once and caches the SQL, but finds it again by a key made from
the whole statement tree, walked anew for each statement object; and a statement made per
request is made of a few hundred objects, each checked and coerced as it is put together. For a
library page that was half of its Python, more than its SQL took (replaying the same statement
objects took 45% of the time of building them again).

So the library's statements are built by functions of their shape alone (which filters, which
order, how many rows), memoized here; what differs between requests (a search term, a tag id, a
cursor's keys) is a named bind parameter, its value given when the statement runs. A builder may
take other built statements and clauses as arguments: those are the same objects each time, so
they find the same entry (SQL elements hash by identity).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])
# Shapes kept per builder: a library has a few hundred in use; each kept statement is a few KB
# (a client asking for ever new shapes holds some tens of MB at most).
SHAPES = 512


_BUILDERS: list[functools._lru_cache_wrapper[object]] = []


def built_once(build: F) -> F:
    """``build``, memoized by its arguments (plain values, or statements built once)."""
    memoized = functools.lru_cache(maxsize=SHAPES)(build)
    _BUILDERS.append(memoized)
    return memoized  # type: ignore[return-value]


def builds() -> int:
    """How many times a builder has built something (the shapes seen, and those seen again
    after they were dropped)."""
    return sum(builder.cache_info().misses for builder in _BUILDERS)
