"""Store members' capacity requests and the history of their states.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.storage.types import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.String(64)
REQUEST_ID = sa.String(36)


def upgrade() -> None:
    op.create_table(
        "capacity_requests",
        sa.Column("request_id", REQUEST_ID, primary_key=True),
        sa.Column("cluster", ID, nullable=False),
        sa.Column("member", ID, nullable=False),
        sa.Column("resource", ID, nullable=False),
        sa.Column("requester", ID, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("contact_name", sa.Text, nullable=False),
        sa.Column("contact_email", sa.Text),
        sa.Column("contact_phone", sa.Text),
        sa.Column("slot_start", UtcDateTime),
        sa.Column("slot_end", UtcDateTime),
        sa.Column("amount_quantity", sa.String(64)),
        sa.Column("amount_value", sa.Float),
        sa.Column("amount_unit", sa.String(64)),
        sa.Column("amount_label", sa.Text),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_at", UtcDateTime, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("answer_seq", sa.BigInteger),
    )
    op.create_index(
        "ix_capacity_requests_requester",
        "capacity_requests",
        ["cluster", "requester", "created_at"],
    )
    op.create_index(
        "ix_capacity_requests_member", "capacity_requests", ["cluster", "member", "created_at"]
    )
    op.create_index("ix_capacity_requests_state", "capacity_requests", ["state", "expires_at"])
    op.create_table(
        "request_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "request_id",
            REQUEST_ID,
            sa.ForeignKey("capacity_requests.request_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_request_log_request_id", "request_log", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_request_log_request_id", "request_log")
    op.drop_table("request_log")
    op.drop_index("ix_capacity_requests_state", "capacity_requests")
    op.drop_index("ix_capacity_requests_member", "capacity_requests")
    op.drop_index("ix_capacity_requests_requester", "capacity_requests")
    op.drop_table("capacity_requests")
