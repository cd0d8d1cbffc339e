"""PostgreSQL: each tag link's copy of its asset's name in lower case

A page walked along a tag's links (migration 0015) tests the search term on each link's copy of
the name, and a page's estimated total tests it on a sample of a thousand links. PostgreSQL's
``ILIKE`` lower-cases every name it tests (under the database's collation): about a
microsecond a name, a millisecond of a page at a million assets. With the copy in lower case
already, the test is a plain ``LIKE`` of the lower-cased term, which finds the same links
(``ILIKE`` compares the two lower-cased). Ordering by the copy's ``lower(name)`` is unchanged.

SQLite is left as it is: its ``LIKE`` folds ASCII letters itself, and a term with other
letters is folded by the application (`search.comparison`).

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _copying(lowered: bool) -> list[str]:
    """The triggers' functions of migration 0015, copying the asset's name (``lowered``: in
    lower case), and the links made before brought to it."""

    def name(row: str) -> str:
        return f"lower({row}.name)" if lowered else f"{row}.name"

    return [
        "CREATE OR REPLACE FUNCTION asset_tags_copy() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN SELECT assets.created_at, {name('assets')} INTO NEW.created_at, NEW.name "
        "FROM assets WHERE id = NEW.asset_id FOR SHARE; RETURN NEW; END $$",
        "CREATE OR REPLACE FUNCTION assets_copy_to_tags() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN UPDATE asset_tags SET created_at = NEW.created_at, name = {name('NEW')} "
        "WHERE asset_id = NEW.id; RETURN NULL; END $$",
        f"UPDATE asset_tags AS l SET name = {name('a')} FROM assets AS a "
        f"WHERE a.id = l.asset_id AND l.name IS DISTINCT FROM {name('a')}",
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _copying(lowered=True):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _copying(lowered=False):
            op.execute(statement)
