"""files that must be removed from the store: deleted assets and unfinished uploads

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_removals",
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("passes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("prefix"),
    )
    op.create_index("ix_storage_removals_not_before", "storage_removals", ["not_before"])


def downgrade() -> None:
    op.drop_index("ix_storage_removals_not_before", table_name="storage_removals")
    op.drop_table("storage_removals")
