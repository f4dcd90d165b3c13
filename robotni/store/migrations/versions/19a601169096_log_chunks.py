"""log chunks: job output in the store, so every API process reads every host's logs

Revision ID: 19a601169096
Revises: 16b4d6d74a4c
Create Date: 2026-11-24 11:53:12
"""

import sqlalchemy as sa
from alembic import op

revision = "19a601169096"
down_revision = "16b4d6d74a4c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_chunks",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "start"),
    )


def downgrade() -> None:
    op.drop_table("log_chunks")
