"""Track which offers take requests, what the broker holds of each request, and its e-mails.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "resources",
        sa.Column("accepts_requests", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column("capacity_requests", sa.Column("routing", sa.String(16)))
    op.create_index("ix_capacity_requests_routing", "capacity_requests", ["routing", "state"])
    op.add_column("request_log", sa.Column("mail_state", sa.String(16)))
    op.add_column(
        "request_log",
        sa.Column("mail_attempts", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_request_log_mail_state", "request_log", ["mail_state"])


def downgrade() -> None:
    op.drop_index("ix_request_log_mail_state", table_name="request_log")
    with op.batch_alter_table("request_log") as batch:
        batch.drop_column("mail_attempts")
        batch.drop_column("mail_state")
    op.drop_index("ix_capacity_requests_routing", table_name="capacity_requests")
    with op.batch_alter_table("capacity_requests") as batch:
        batch.drop_column("routing")
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("accepts_requests")
