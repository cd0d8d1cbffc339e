"""each tag's assets in creation order, with their names, and (SQLite) each tag's size

A library page filtered by a tag, newest first, walked the index of every asset's creation
time and tested each row for the tag: at a million assets, for a tag on one in ten and a search
matching one in twenty of those, some 4,000 rows for a page of 20, each read from the table.
Each link of `asset_tags` now carries its asset's `created_at` and `name`, and an index on
(tag_id, created_at, asset_id, name) hands a tag's assets over in that order with their names,
so a page tests only the tag's own assets (some 400), and a search among them reads only that
index; another does the same by name, (tag_id, lower(name), asset_id, name). A third, on
(tag_id, asset_id, name), reads a range of a tag's asset ids: ids are random, so a range holds
a fair sample of the tag's assets, from which a page's total is estimated.

The copies are kept by triggers (an insert of a link copies them from its asset; a rename or
a changed creation time reaches its links), so every writer (the API's, the bench seeder's)
keeps them.

SQLite has no statistics to size a tag by, and counting a tag of 100,000 links takes
milliseconds: `tag_link_counts` holds each tag's number of links, kept by triggers. PostgreSQL's
planner sizes a tag from its statistics; a counter row there would also serialise every writer
of a popular tag.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ORDER_INDEX = "ix_asset_tags_tag_order"
# A tag's assets by name (case-folded), as the library sorts them.
NAME_INDEX = "ix_asset_tags_tag_name_order"
NAME_ORDER: list[str | sa.TextClause] = ["tag_id", sa.text("lower(name)"), "asset_id", "name"]
# A tag's links by asset id (ids are random: a range of them is a fair sample of the tag).
SAMPLE_INDEX = "ix_asset_tags_tag_asset"
SQLITE_UP = [
    "CREATE TRIGGER asset_tags_copy AFTER INSERT ON asset_tags BEGIN "
    "UPDATE asset_tags SET (created_at, name) = "
    "(SELECT created_at, name FROM assets WHERE id = new.asset_id) "
    "WHERE asset_id = new.asset_id AND tag_id = new.tag_id; END",
    "CREATE TRIGGER assets_copy_to_tags AFTER UPDATE OF created_at, name ON assets BEGIN "
    "UPDATE asset_tags SET created_at = new.created_at, name = new.name "
    "WHERE asset_id = new.id; END",
    # After the triggers: a link added meanwhile is copied by them, not left out.
    "UPDATE asset_tags SET (created_at, name) = "
    "(SELECT created_at, name FROM assets WHERE assets.id = asset_tags.asset_id) "
    "WHERE created_at IS NULL",
    "CREATE TABLE tag_link_counts (tag_id INTEGER PRIMARY KEY, links INTEGER NOT NULL)",
    "INSERT INTO tag_link_counts (tag_id, links) "
    "SELECT tag_id, count(*) FROM asset_tags GROUP BY tag_id",
    "CREATE TRIGGER tag_link_counts_add AFTER INSERT ON asset_tags BEGIN "
    "INSERT INTO tag_link_counts (tag_id, links) VALUES (new.tag_id, 1) "
    "ON CONFLICT (tag_id) DO UPDATE SET links = links + 1; END",
    "CREATE TRIGGER tag_link_counts_remove AFTER DELETE ON asset_tags BEGIN "
    "UPDATE tag_link_counts SET links = links - 1 WHERE tag_id = old.tag_id; END",
    "CREATE TRIGGER tag_link_counts_drop AFTER DELETE ON tags BEGIN "
    "DELETE FROM tag_link_counts WHERE tag_id = old.id; END",
]
SQLITE_DOWN = [
    "DROP TRIGGER tag_link_counts_drop",
    "DROP TRIGGER tag_link_counts_remove",
    "DROP TRIGGER tag_link_counts_add",
    "DROP TABLE tag_link_counts",
    "DROP TRIGGER assets_copy_to_tags",
    "DROP TRIGGER asset_tags_copy",
]
POSTGRES_UP = [
    # FOR SHARE: a rename under way finishes first (its own trigger could not see this link).
    "CREATE FUNCTION asset_tags_copy() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "SELECT created_at, name INTO NEW.created_at, NEW.name FROM assets "
    "WHERE id = NEW.asset_id FOR SHARE; RETURN NEW; END $$",
    "CREATE TRIGGER asset_tags_copy BEFORE INSERT ON asset_tags "
    "FOR EACH ROW EXECUTE FUNCTION asset_tags_copy()",
    "CREATE FUNCTION assets_copy_to_tags() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE asset_tags SET created_at = NEW.created_at, name = NEW.name "
    "WHERE asset_id = NEW.id; RETURN NULL; END $$",
    "CREATE TRIGGER assets_copy_to_tags AFTER UPDATE OF created_at, name ON assets "
    "FOR EACH ROW EXECUTE FUNCTION assets_copy_to_tags()",
    "UPDATE asset_tags AS l SET created_at = a.created_at, name = a.name "
    "FROM assets AS a WHERE a.id = l.asset_id AND l.created_at IS NULL",
]
POSTGRES_DOWN = [
    "DROP TRIGGER assets_copy_to_tags ON assets",
    "DROP FUNCTION assets_copy_to_tags()",
    "DROP TRIGGER asset_tags_copy ON asset_tags",
    "DROP FUNCTION asset_tags_copy()",
]


def upgrade() -> None:
    with op.batch_alter_table("asset_tags") as table:
        table.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("name", sa.String(255), nullable=True))
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_UP if sqlite else POSTGRES_UP:
        op.execute(statement)
    op.create_index(ORDER_INDEX, "asset_tags", ["tag_id", "created_at", "asset_id", "name"])
    op.create_index(SAMPLE_INDEX, "asset_tags", ["tag_id", "asset_id", "name"])
    op.create_index(NAME_INDEX, "asset_tags", NAME_ORDER)
    op.drop_index("ix_asset_tags_tag_id", table_name="asset_tags")


def downgrade() -> None:
    op.create_index("ix_asset_tags_tag_id", "asset_tags", ["tag_id"])
    op.drop_index(NAME_INDEX, table_name="asset_tags")
    op.drop_index(SAMPLE_INDEX, table_name="asset_tags")
    op.drop_index(ORDER_INDEX, table_name="asset_tags")
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DOWN if sqlite else POSTGRES_DOWN:
        op.execute(statement)
    with op.batch_alter_table("asset_tags") as table:
        table.drop_column("name")
        table.drop_column("created_at")
