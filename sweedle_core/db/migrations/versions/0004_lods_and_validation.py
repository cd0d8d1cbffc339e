"""keep each asset's LOD chain and mesh validation report

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lods", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("validation", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_column("validation")
        batch_op.drop_column("lods")
