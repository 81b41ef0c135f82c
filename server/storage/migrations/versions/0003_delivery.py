"""Add delivered message ids, sequence numbers, member status and registered members.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.storage.types import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.String(64)
MESSAGE_ID = sa.String(160)

# Tables that get the sequence number and message id of the message they were written from.
TABLES_WITH_ENVELOPE = ("resources", "withdrawals", "offer_history")


def _member_key() -> list[sa.Column[str]]:
    return [
        sa.Column("cluster", ID, primary_key=True),
        sa.Column("member", ID, primary_key=True),
    ]


def upgrade() -> None:
    op.create_table(
        "delivered_messages",
        *_member_key(),
        sa.Column("message_id", MESSAGE_ID, primary_key=True),
        sa.Column("seq", sa.BigInteger),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_delivered_messages_received_at", "delivered_messages", ["received_at"])
    for table in TABLES_WITH_ENVELOPE:
        # SQLite adds a nullable column in place, so no batch copy is needed here.
        op.add_column(table, sa.Column("seq", sa.BigInteger))
        op.add_column(table, sa.Column("message_id", MESSAGE_ID))
    op.create_table(
        "member_status",
        *_member_key(),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("connected_at", UtcDateTime, nullable=False),
        sa.Column("reason", sa.String(32)),
        sa.Column("agent_version", sa.Text),
        sa.Column("status_received_at", UtcDateTime, nullable=False),
        sa.Column("message_id", MESSAGE_ID, nullable=False),
    )
    op.create_table(
        "registered_members",
        *_member_key(),
        sa.Column("registered_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registered_members")
    op.drop_table("member_status")
    for table in reversed(TABLES_WITH_ENVELOPE):
        # SQLite before 3.35 has no DROP COLUMN, so batch mode copies the table there.
        with op.batch_alter_table(table) as batch:
            batch.drop_column("message_id")
            batch.drop_column("seq")
    op.drop_index("ix_delivered_messages_received_at", "delivered_messages")
    op.drop_table("delivered_messages")
