"""Finding assets by a term in their names through the trigram indexes of migration 0014.

On SQLite a term of `TRIGRAM` characters or more is looked up in the FTS5 table `asset_names`
(its rowids are `asset_search_keys.id`, one per asset id) as a phrase: the phrase's quotes are
doubled, so quotes, ``%`` and ``_`` are plain characters, as everywhere in search. Shorter
terms, and PostgreSQL (whose GIN trigram index serves ``ILIKE`` as it is), go through
``ILIKE``/``LIKE`` with those characters escaped.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, column, select, table

from sweedle_core.db.models import Asset

TRIGRAM = 3  # the shortest term a trigram index can look up
_NAMES = table("asset_names", column("rowid"), column("name"))
_KEYS = table("asset_search_keys", column("id"), column("asset_id"))


def named(term: str, dialect: str) -> Select[Any]:
    """The ids of the assets whose name holds ``term``, case-folded, on a database of
    ``dialect``."""
    if dialect != "sqlite" or len(term) < TRIGRAM:
        return select(Asset.id).where(Asset.name.icontains(term, autoescape=True))
    # IN, not a join: SQLite then reads the few matching keys first, and drives a page by them.
    return select(_KEYS.c.asset_id).where(_KEYS.c.id.in_(matching_names(term)))


def matching_names(term: str) -> Select[Any]:
    """The FTS5 rows (SQLite) whose name holds ``term``, of `TRIGRAM` characters or more."""
    phrase = '"' + term.replace('"', '""') + '"'
    return select(_NAMES.c.rowid).where(_NAMES.c.name.op("MATCH")(phrase))
