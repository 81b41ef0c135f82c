"""Create the tables of the first release.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.storage.types import UtcDateTime

revision = "0001"
down_revision = None
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
    op.create_table(
        "members",
        sa.Column("cluster", ID, primary_key=True),
        sa.Column("member", ID, primary_key=True),
        sa.Column("first_seen", UtcDateTime, nullable=False),
        sa.Column("last_seen", UtcDateTime, nullable=False),
    )
    op.create_table(
        "resources",
        *_resource_key(),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("state", sa.String(32)),
        sa.Column("state_since", UtcDateTime),
        sa.Column("free_hours", sa.Float),
        sa.Column("horizon_start", UtcDateTime),
        sa.Column("horizon_end", UtcDateTime),
        sa.Column("generated_at", UtcDateTime, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_resources_kind", "resources", ["kind"])
    op.create_table(
        "resource_capabilities",
        *_resource_key(),
        sa.Column("capability", sa.String(200), primary_key=True),
    )
    op.create_index("ix_resource_capabilities_capability", "resource_capabilities", ["capability"])
    op.create_table(
        "free_intervals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cluster", ID, nullable=False),
        sa.Column("member", ID, nullable=False),
        sa.Column("resource", ID, nullable=False),
        sa.Column("start", UtcDateTime, nullable=False),
        sa.Column("end", UtcDateTime, nullable=False),
    )
    op.create_index(
        "ix_free_intervals_resource", "free_intervals", ["cluster", "member", "resource"]
    )
    op.create_index("ix_free_intervals_time", "free_intervals", ["start", "end"])
    op.create_table(
        "offer_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cluster", ID, nullable=False),
        sa.Column("member", ID, nullable=False),
        sa.Column("resource", ID, nullable=False),
        sa.Column("generated_at", UtcDateTime, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_offer_history_resource",
        "offer_history",
        ["cluster", "member", "resource", "generated_at"],
    )
    op.create_table(
        "rejected_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_rejected_messages_received_at", "rejected_messages", ["received_at"])


def downgrade() -> None:
    for table in (
        "rejected_messages",
        "offer_history",
        "free_intervals",
        "resource_capabilities",
        "resources",
        "members",
    ):
        op.drop_table(table)
