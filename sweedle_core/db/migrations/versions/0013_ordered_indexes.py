"""indexes in the order the library sorts and pages by, so a page is read off an index

The asset list sorts by creation time, name (case-folded) or vertex count (assets without a mesh
last), each with the id as tiebreak, and a key sees only its own assets; job history sorts by
creation time. Each order gets an index that matches it on SQLite and PostgreSQL alike (the
nulls-last order through an `IS NULL` key, which both read the same way), and the one-column
indexes these lead with are dropped.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

Columns = list[str | sa.TextClause]
VERTICES: Columns = [sa.text("(vertex_count IS NULL)"), "vertex_count", "id"]
VERTICES_DESC: Columns = [
    sa.text("(vertex_count IS NULL)"),
    sa.text("vertex_count DESC"),
    sa.text("id DESC"),
]
# Each order twice: over every asset (an admin key, no keys) and over one key's own.
ASSET_ORDERS: dict[str, Columns] = {
    "ix_assets_created_order": ["created_at", "id"],
    "ix_assets_name_order": [sa.text("lower(name)"), "id"],
    "ix_assets_vertices_order": VERTICES,
    "ix_assets_vertices_desc_order": VERTICES_DESC,
    "ix_assets_owner_created_order": ["owner", "created_at", "id"],
    "ix_assets_owner_name_order": ["owner", sa.text("lower(name)"), "id"],
    "ix_assets_owner_vertices_order": ["owner", *VERTICES],
    "ix_assets_owner_vertices_desc_order": ["owner", *VERTICES_DESC],
}
JOB_ORDERS: dict[str, Columns] = {
    "ix_generation_jobs_created_order": ["created_at", "id"],
    "ix_generation_jobs_owner_created_order": ["owner", "created_at", "id"],
}


def upgrade() -> None:
    for name, columns in ASSET_ORDERS.items():
        op.create_index(name, "assets", columns)
    for name, columns in JOB_ORDERS.items():
        op.create_index(name, "generation_jobs", columns)
    op.drop_index("ix_assets_created_at", table_name="assets")
    op.drop_index("ix_assets_owner", table_name="assets")
    op.drop_index("ix_generation_jobs_owner", table_name="generation_jobs")
    op.drop_index("ix_generation_jobs_created_at", table_name="generation_jobs")


def downgrade() -> None:
    op.create_index("ix_generation_jobs_created_at", "generation_jobs", ["created_at"])
    op.create_index("ix_generation_jobs_owner", "generation_jobs", ["owner"])
    op.create_index("ix_assets_owner", "assets", ["owner"])
    op.create_index("ix_assets_created_at", "assets", ["created_at"])
    for name in JOB_ORDERS:
        op.drop_index(name, table_name="generation_jobs")
    for name in ASSET_ORDERS:
        op.drop_index(name, table_name="assets")
