"""Jobs from specs and the tasks API, queue priorities and waiting reasons, and a small
per-repository record table (the dashboard issue, reconciliation marks).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False,
                                   server_default="issue"))
        batch.add_column(sa.Column("task_text", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("priority", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("wait_reason", sa.Text, nullable=False, server_default=""))
    op.create_table(
        "repo_records",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("forge", sa.String(32), nullable=False),
        sa.Column("repo", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("forge", "repo", "kind", "key", name="uq_repo_record"),
    )


def downgrade() -> None:
    op.drop_table("repo_records")
    with op.batch_alter_table("jobs") as batch:
        for column in ("wait_reason", "priority", "task_text", "kind"):
            batch.drop_column(column)
