"""lost attempts: a job whose worker was lost runs again without spending its type's retries

Revision ID: 7c3e9a51d2b4
Revises: 19a601169096
Create Date: 2026-11-30 12:25:00
"""

import sqlalchemy as sa
from alembic import op

revision = "7c3e9a51d2b4"
down_revision = "19a601169096"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lost_attempts", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("lost_attempts")
