"""record on the asset how its background was removed; room for longer method names

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("background_method", sa.String(length=128), nullable=True))
    with op.batch_alter_table("generation_jobs", schema=None) as batch_op:
        batch_op.alter_column(
            "background_method",
            existing_type=sa.String(length=64),
            type_=sa.String(length=128),
            existing_nullable=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("generation_jobs", schema=None) as batch_op:
        batch_op.alter_column(
            "background_method",
            existing_type=sa.String(length=128),
            type_=sa.String(length=64),
            existing_nullable=True,
        )
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_column("background_method")
