"""each tag link carries its asset's owner: a key's own pages walk a tag's links too

With API keys, every caller but an admin sees only its own assets, so each of its pages is
limited to one owner. A page walked along a tag's links (migration 0015) could not tell a key's
links apart from the others' without reading every asset: a key's pages walked the key's own
index of assets instead, testing each for its tags (at a million assets, 40-70 ms a page on
SQLite for a search and a tag). Each link now carries its asset's ``owner``, copied by the same
triggers as its creation time and name, and two indexes hand a tag's links of one owner over in
the library's orders: (tag_id, owner, created_at, asset_id, name) and (tag_id, owner,
lower(name), asset_id, name); a third, (tag_id, owner, asset_id, name), hands over an owner's
first links of a tag by asset id: ids are random, so they are a fair sample of them, from which
a key's total is estimated.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

OWNER_ORDER_INDEX = "ix_asset_tags_owner_order"
OWNER_NAME_INDEX = "ix_asset_tags_owner_name_order"
OWNER_NAME_ORDER: list[str | sa.TextClause] = [
    "tag_id",
    "owner",
    sa.text("lower(name)"),
    "asset_id",
    "name",
]
OWNER_SAMPLE_INDEX = "ix_asset_tags_owner_asset"


def _sqlite(copied: list[str]) -> list[str]:
    """Migration 0015's triggers, copying the asset's columns ``copied``."""
    columns = ", ".join(copied)
    updated = ", ".join(f"{c} = new.{c}" for c in copied)
    return [
        "DROP TRIGGER asset_tags_copy",
        "DROP TRIGGER assets_copy_to_tags",
        "CREATE TRIGGER asset_tags_copy AFTER INSERT ON asset_tags BEGIN "
        f"UPDATE asset_tags SET ({columns}) = (SELECT {columns} FROM assets WHERE id = "
        "new.asset_id) WHERE asset_id = new.asset_id AND tag_id = new.tag_id; END",
        f"CREATE TRIGGER assets_copy_to_tags AFTER UPDATE OF {columns} ON assets BEGIN "
        f"UPDATE asset_tags SET {updated} WHERE asset_id = new.id; END",
    ]


def _postgres(copied: list[str]) -> list[str]:
    """Migration 0016's trigger functions (the name in lower case), copying the asset's
    columns ``copied``; the trigger on assets fires on a change of any of them."""
    taken = ", ".join("lower(assets.name)" if c == "name" else f"assets.{c}" for c in copied)
    into = ", ".join(f"NEW.{c}" for c in copied)
    updated = ", ".join(
        f"{c} = lower(NEW.name)" if c == "name" else f"{c} = NEW.{c}" for c in copied
    )
    return [
        "CREATE OR REPLACE FUNCTION asset_tags_copy() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN SELECT {taken} INTO {into} "
        "FROM assets WHERE id = NEW.asset_id FOR SHARE; RETURN NEW; END $$",
        "CREATE OR REPLACE FUNCTION assets_copy_to_tags() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN UPDATE asset_tags SET {updated} WHERE asset_id = NEW.id; RETURN NULL; END $$",
        "DROP TRIGGER assets_copy_to_tags ON assets",
        f"CREATE TRIGGER assets_copy_to_tags AFTER UPDATE OF {', '.join(copied)} ON assets "
        "FOR EACH ROW EXECUTE FUNCTION assets_copy_to_tags()",
    ]


BEFORE = ["created_at", "name"]
AFTER = [*BEFORE, "owner"]
# After the triggers: a link added meanwhile is copied by them, not left out.
SQLITE_FILL = (
    "UPDATE asset_tags SET owner = (SELECT owner FROM assets WHERE assets.id = "
    "asset_tags.asset_id) WHERE asset_id IN (SELECT id FROM assets WHERE owner IS NOT NULL)"
)
POSTGRES_FILL = (
    "UPDATE asset_tags AS l SET owner = a.owner FROM assets AS a "
    "WHERE a.id = l.asset_id AND a.owner IS NOT NULL"
)


def upgrade() -> None:
    op.add_column("asset_tags", sa.Column("owner", sa.String(64), nullable=True))
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _sqlite(AFTER) if sqlite else _postgres(AFTER):
        op.execute(statement)
    op.execute(SQLITE_FILL if sqlite else POSTGRES_FILL)
    op.create_index(
        OWNER_ORDER_INDEX, "asset_tags", ["tag_id", "owner", "created_at", "asset_id", "name"]
    )
    op.create_index(OWNER_NAME_INDEX, "asset_tags", OWNER_NAME_ORDER)
    op.create_index(OWNER_SAMPLE_INDEX, "asset_tags", ["tag_id", "owner", "asset_id", "name"])


DROP_COLUMN_SQLITE = (3, 35)  # ALTER TABLE ... DROP COLUMN


def downgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        version = bind.exec_driver_sql("SELECT sqlite_version()").scalar_one()
        if tuple(int(part) for part in version.split(".")) < DROP_COLUMN_SQLITE:
            raise RuntimeError(
                f"SQLite {version} cannot drop a column in place: going below migration 0017 "
                "needs SQLite 3.35 or newer (the database is left as it was)"
            )
    op.drop_index(OWNER_SAMPLE_INDEX, table_name="asset_tags")
    op.drop_index(OWNER_NAME_INDEX, table_name="asset_tags")
    op.drop_index(OWNER_ORDER_INDEX, table_name="asset_tags")
    for statement in _sqlite(BEFORE) if sqlite else _postgres(BEFORE):
        op.execute(statement)
    # In place (SQLite 3.35 or later): a batch would make the table anew, and drop the
    # triggers on it (migration 0015's).
    op.execute("ALTER TABLE asset_tags DROP COLUMN owner")
