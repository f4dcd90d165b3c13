"""priority (its rank: 0 urgent, 1 normal, 2 batch), concurrency key and limit on jobs; indexes for the claim

Revision ID: 27b297b9c72b
Revises: 3502ff5f83e5
Create Date: 2026-11-30 12:09:37.489487
"""

from alembic import op
import sqlalchemy as sa


revision = '27b297b9c72b'
down_revision = '3502ff5f83e5'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('concurrency_key', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('concurrency_limit', sa.Integer(), nullable=True))
        batch_op.create_index('ix_jobs_key_status', ['concurrency_key', 'status'], unique=False)
        batch_op.create_index('ix_jobs_queue_status_priority', ['queue', 'status', 'priority', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_jobs_queue_status_project', ['queue', 'status', 'project', 'priority', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_jobs_type_started', ['type', 'started_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_type_started')
        batch_op.drop_index('ix_jobs_queue_status_project')
        batch_op.drop_index('ix_jobs_queue_status_priority')
        batch_op.drop_index('ix_jobs_key_status')
        batch_op.drop_column('concurrency_limit')
        batch_op.drop_column('concurrency_key')
        batch_op.drop_column('priority')

