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

from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, String, bindparam, column, func, select, table

from sweedle_core.db.models import Asset
from sweedle_core.db.shapes import built_once

TRIGRAM = 3  # the shortest term a trigram index can look up
_NAMES = table("asset_names", column("rowid"), column("name"))
_KEYS = table("asset_search_keys", column("id"), column("asset_id"))
# The term as statements take it (`term_values`): for LIKE, its wildcards and the escape
# character escaped; for FTS5, as a phrase.
_TERM = bindparam("term", type_=String)
_PHRASE = bindparam("phrase", type_=String)
_ESCAPE = "/"


FOLD = "sweedle_fold"  # SQLite: `fold` as an SQL function


def fold(text: str | None) -> str | None:
    """Case-folded as the trigram index folds (per character, every script)."""
    return text.lower() if isinstance(text, str) else text


Comparison = Literal["ilike", "like", "fold"]


def comparison(term: str, dialect: str) -> Comparison:
    """How a name is compared with ``term`` (`holds`):

    - PostgreSQL: ``ILIKE``, which its trigram index serves;
    - SQLite, an ASCII term: its own ``LIKE``, which folds ASCII letters by itself (with
      ``lower()`` on both sides, as SQLAlchemy writes a case-insensitive match, a probe took
      three times as long); it finds the same names as the trigram index but for a letter that
      folds into ASCII, as the Kelvin sign does into "k";
    - SQLite, a term with other letters: through `FOLD`, as SQLite's own ``lower`` and ``LIKE``
      fold ASCII only (else, tested row by row, "ÉCOLE" would not hold "éco", though the index
      finds it)."""
    if dialect != "sqlite":
        return "ilike"
    return "like" if term.isascii() else "fold"


def term_values(term: str, dialect: str) -> dict[str, str]:
    """The values of the parameters `holds` and `matching_names` take for ``term``."""
    compared = (fold(term) or "") if comparison(term, dialect) == "fold" else term
    for special in (_ESCAPE, "%", "_"):  # the escape character first
        compared = compared.replace(special, _ESCAPE + special)
    return {"term": compared, "phrase": '"' + term.replace('"', '""') + '"'}


def holds(value: Any, compared: Comparison) -> ColumnElement[bool]:
    """``value`` (a text column) holds the term (`term_values`), case-folded, ``compared`` as
    `comparison` says; ``%``, ``_`` and the escape character are plain characters."""
    if compared == "fold":
        return getattr(func, FOLD)(value).contains(_TERM, escape=_ESCAPE)
    if compared == "like":
        return value.contains(_TERM, escape=_ESCAPE)
    return value.icontains(_TERM, escape=_ESCAPE)


def copy_holds(copy: Any, compared: Comparison) -> ColumnElement[bool]:
    """`holds`, for a tag link's copy of its asset's name (`models.asset_tags`), which on
    PostgreSQL is in lower case already (migration 0016): it is compared by a plain ``LIKE`` of
    the lower-cased term, which finds what ``ILIKE`` does without folding each row."""
    if compared == "ilike":
        return copy.contains(func.lower(_TERM), escape=_ESCAPE)
    return holds(copy, compared)


@built_once
def named(dialect: str, indexed: bool, compared: Comparison) -> Select[Any]:
    """The ids of the assets whose name holds the term, case-folded, on a database of
    ``dialect``; ``indexed``: a term of `TRIGRAM` characters or more (SQLite looks it up in the
    names' index)."""
    if dialect != "sqlite" or not indexed:
        return select(Asset.id).where(holds(Asset.name, compared))
    # IN, not a join: SQLite then reads the few matching keys first, and drives a page by them.
    return select(_KEYS.c.asset_id).where(_KEYS.c.id.in_(matching_names()))


def named_every(every: ColumnElement[int]) -> Select[Any]:
    """Of `named`'s ids on SQLite (a term of `TRIGRAM` characters or more), those of every
    ``every``-th name by the order they were added in: picked among the names' index's rows,
    before their keys are read (picked after, each of 50,000 matches was read for its key)."""
    every_nth = matching_names().where(_NAMES.c.rowid % every == 0)
    return select(_KEYS.c.asset_id).where(_KEYS.c.id.in_(every_nth))


@built_once
def matching_names() -> Select[Any]:
    """The FTS5 rows (SQLite) whose name holds the term, of `TRIGRAM` characters or more."""
    return select(_NAMES.c.rowid).where(_NAMES.c.name.op("MATCH")(_PHRASE))
