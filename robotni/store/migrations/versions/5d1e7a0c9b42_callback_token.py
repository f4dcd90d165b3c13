"""a job's callback token: the token whose own callback secret signs its callback

Revision ID: 5d1e7a0c9b42
Revises: 043066412aed
Create Date: 2026-11-30 15:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "5d1e7a0c9b42"
down_revision = "043066412aed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("callback_token", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("callback_token")
