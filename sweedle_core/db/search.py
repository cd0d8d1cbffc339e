"""Finding assets by a term in their names through the trigram indexes of migration 0014.

On SQLite a term of `TRIGRAM` characters or more is looked up in the FTS5 table `asset_names`
(its rowids are `asset_search_keys.id`, one per asset id) as a phrase: the phrase's quotes are
doubled, so quotes, ``%`` and ``_`` are plain characters, as everywhere in search. Shorter
terms, and PostgreSQL (whose GIN trigram index serves ``ILIKE`` as it is), go through
``ILIKE``/``LIKE`` with those characters escaped (`holds`).

"Holds" folds case for every script, as the trigram index does: SQLite's own ``lower`` and
``LIKE`` fold ASCII only, so on SQLite a term with other letters is compared through `FOLD`, a
function every connection gets (`engine.make_engine`); else a name found through the index
("ÉCOLE" for "éco") would be missed when the same search tests names one by one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, column, func, select, table

from sweedle_core.db.models import Asset

TRIGRAM = 3  # the shortest term a trigram index can look up
_NAMES = table("asset_names", column("rowid"), column("name"))
_KEYS = table("asset_search_keys", column("id"), column("asset_id"))
NAME_KEY = _KEYS.c.id  # the key of a name `named` found: one per asset, in the order added


FOLD = "sweedle_fold"  # SQLite: `fold` as an SQL function


def fold(text: str | None) -> str | None:
    """Case-folded as the trigram index folds (per character, every script)."""
    return text.lower() if isinstance(text, str) else text


def holds(value: Any, term: str, dialect: str) -> ColumnElement[bool]:
    """``value`` (a text column) holds ``term``, case-folded; ``%``, ``_`` and the escape
    character are plain characters."""
    if dialect == "sqlite" and not term.isascii():
        return getattr(func, FOLD)(value).contains(fold(term), autoescape=True)
    # An ASCII term: SQLite's own folding finds the same names, without calling back into
    # Python for every row a page walks (a letter that folds into ASCII, as the Kelvin sign
    # does into "k", is the exception).
    return value.icontains(term, autoescape=True)


def named(term: str, dialect: str) -> Select[Any]:
    """The ids of the assets whose name holds ``term``, case-folded, on a database of
    ``dialect``."""
    if dialect != "sqlite" or len(term) < TRIGRAM:
        return select(Asset.id).where(holds(Asset.name, term, dialect))
    # IN, not a join: SQLite then reads the few matching keys first, and drives a page by them.
    return select(_KEYS.c.asset_id).where(_KEYS.c.id.in_(matching_names(term)))


def matching_names(term: str) -> Select[Any]:
    """The FTS5 rows (SQLite) whose name holds ``term``, of `TRIGRAM` characters or more."""
    phrase = '"' + term.replace('"', '""') + '"'
    return select(_NAMES.c.rowid).where(_NAMES.c.name.op("MATCH")(phrase))
