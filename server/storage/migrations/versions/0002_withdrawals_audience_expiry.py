"""Add withdrawals, offer audiences, expiry and banded free hours.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.storage.types import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(64)


def _resource_key() -> list[sa.Column[str]]:
    return [
        sa.Column("cluster", ID, primary_key=True),
        sa.Column("member", ID, primary_key=True),
        sa.Column("resource", ID, primary_key=True),
    ]


def upgrade() -> None:
    op.add_column("resources", sa.Column("free_hours_min", sa.Float))
    op.add_column("resources", sa.Column("free_hours_max", sa.Float))
    op.add_column("resources", sa.Column("expires_at", UtcDateTime))
    op.create_index("ix_resources_expires_at", "resources", ["expires_at"])
    op.create_table(
        "resource_audience",
        *_resource_key(),
        sa.Column("viewer", ID, primary_key=True),
    )
    op.create_table(
        "withdrawals",
        *_resource_key(),
        sa.Column("withdrawn_at", UtcDateTime, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("delete_history", sa.Boolean, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("withdrawals")
    op.drop_table("resource_audience")
    op.drop_index("ix_resources_expires_at", "resources")
    # SQLite before 3.35 has no DROP COLUMN, so batch mode copies the table there.
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("free_hours_max")
        batch.drop_column("free_hours_min")
