"""Keep each offer's free machine hours per day, so the capacity plot reads no payloads.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.storage.capacity import backfill_capacity
from server.storage.types import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "capacity_days",
        sa.Column("cluster", ID, primary_key=True),
        sa.Column("member", ID, primary_key=True),
        sa.Column("resource", ID, primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("generated_at", UtcDateTime, nullable=False),
        sa.Column("free_hours", sa.Float, nullable=False),
    )
    op.create_index("ix_capacity_days_day", "capacity_days", ["day"])
    history = sa.table(
        "offer_history",
        sa.column("id"),
        sa.column("cluster"),
        sa.column("member"),
        sa.column("resource"),
        sa.column("generated_at", UtcDateTime),
        sa.column("payload"),
    )
    backfill_capacity(op.get_bind(), history)


def downgrade() -> None:
    op.drop_index("ix_capacity_days_day", "capacity_days")
    op.drop_table("capacity_days")
