"""asset names searched through an index: an FTS5 trigram table on SQLite, pg_trgm on PostgreSQL

Search matches a term anywhere in a name, case-folded. A `LIKE '%term%'` reads every name; a
trigram index finds the names holding the term's three-letter pieces (terms of 3 characters or
more; shorter ones are still matched by `LIKE`).

SQLite: `asset_names`, an FTS5 table with the trigram tokenizer, keyed by `asset_search_keys`
(an integer per asset id: the assets table has no integer key of its own that `VACUUM` keeps),
both kept by triggers on `assets`, so every insert, rename and delete (the API's, the bench
seeder's) reaches them. PostgreSQL: a GIN `gin_trgm_ops` index on `assets.name`, which serves
`ILIKE`; where the `pg_trgm` extension cannot be created (a server without contrib), searches
read every name as before, and the migration says so.

Revision ID: 0014
Revises: 0013
"""

import logging

from alembic import op
from sqlalchemy import text

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
TRIGRAM_SQLITE = (3, 34)  # the first SQLite with FTS5's trigram tokenizer
KEY_OF = "(SELECT id FROM asset_search_keys WHERE asset_id = {row}.id)"
SQLITE_UP = [
    "CREATE TABLE asset_search_keys (id INTEGER PRIMARY KEY, asset_id VARCHAR(32) NOT NULL UNIQUE)",
    "CREATE VIRTUAL TABLE asset_names USING fts5(name, tokenize = 'trigram')",
    "INSERT INTO asset_search_keys (asset_id) SELECT id FROM assets",
    "INSERT INTO asset_names (rowid, name) "
    "SELECT k.id, a.name FROM asset_search_keys AS k JOIN assets AS a ON a.id = k.asset_id",
    "CREATE TRIGGER asset_names_insert AFTER INSERT ON assets BEGIN "
    "INSERT INTO asset_search_keys (asset_id) VALUES (new.id); "
    f"INSERT INTO asset_names (rowid, name) VALUES ({KEY_OF.format(row='new')}, new.name); END",
    "CREATE TRIGGER asset_names_rename AFTER UPDATE OF name ON assets BEGIN "
    f"UPDATE asset_names SET name = new.name WHERE rowid = {KEY_OF.format(row='new')}; END",
    "CREATE TRIGGER asset_names_delete AFTER DELETE ON assets BEGIN "
    f"DELETE FROM asset_names WHERE rowid = {KEY_OF.format(row='old')}; "
    "DELETE FROM asset_search_keys WHERE asset_id = old.id; END",
]
SQLITE_DOWN = [
    "DROP TRIGGER asset_names_delete",
    "DROP TRIGGER asset_names_rename",
    "DROP TRIGGER asset_names_insert",
    "DROP TABLE asset_names",
    "DROP TABLE asset_search_keys",
]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        version = bind.exec_driver_sql("SELECT sqlite_version()").scalar_one()
        if tuple(int(part) for part in version.split(".")) < TRIGRAM_SQLITE:
            raise RuntimeError(
                f"SQLite {version} has no trigram tokenizer for the name search index: "
                "Sweedle needs SQLite 3.34 or newer (a newer Python, or its sqlite3 library)"
            )
        for statement in SQLITE_UP:
            op.execute(statement)
        return
    try:
        with bind.begin_nested():
            bind.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except Exception as exc:  # no contrib on the server, or no right to create it
        log.warning("pg_trgm is not available (%s); name searches read every name", exc)
        return
    op.execute("CREATE INDEX ix_assets_name_trigrams ON assets USING gin (name gin_trgm_ops)")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in SQLITE_DOWN:
            op.execute(statement)
    else:
        op.execute("DROP INDEX IF EXISTS ix_assets_name_trigrams")
