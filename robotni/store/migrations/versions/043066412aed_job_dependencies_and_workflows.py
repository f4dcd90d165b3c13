"""job dependencies and workflows

Revision ID: 043066412aed
Revises: 27b297b9c72b
Create Date: 2026-11-30 12:09:47.250857
"""

import sqlalchemy as sa
from alembic import op

revision = "043066412aed"
down_revision = "27b297b9c72b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dependencies",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("parent_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "parent_id"),
    )
    with op.batch_alter_table("dependencies", schema=None) as batch_op:
        batch_op.create_index("ix_dependencies_parent", ["parent_id"], unique=False)

    op.create_table(
        "workflows",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.create_index("ix_workflows_created", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_workflows_project_created", ["project", "created_at", "id"], unique=False)

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("on_parent_failure", sa.String(length=8), nullable=True))
        # Existing jobs have no parents: 0, through the server default.
        batch_op.add_column(sa.Column("parents_left", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("has_dependents", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("workflow_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("step", sa.String(length=128), nullable=True))
        batch_op.create_index("ix_jobs_workflow", ["workflow_id"], unique=False)

    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("workflow", sa.JSON(), nullable=True))
        batch_op.alter_column("type", existing_type=sa.String(length=64), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.alter_column("type", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("workflow")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_workflow")
        batch_op.drop_column("step")
        batch_op.drop_column("workflow_id")
        batch_op.drop_column("has_dependents")
        batch_op.drop_column("parents_left")
        batch_op.drop_column("on_parent_failure")

    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.drop_index("ix_workflows_project_created")
        batch_op.drop_index("ix_workflows_created")
    op.drop_table("workflows")

    with op.batch_alter_table("dependencies", schema=None) as batch_op:
        batch_op.drop_index("ix_dependencies_parent")
    op.drop_table("dependencies")
