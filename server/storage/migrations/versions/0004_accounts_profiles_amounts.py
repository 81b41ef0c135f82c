"""Add dashboard accounts and sessions, member profiles and searchable free amounts.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from server.storage.amounts import amount_rows
from server.storage.types import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "member_profiles",
        sa.Column("cluster", ID, primary_key=True),
        sa.Column("member", ID, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("contact_email", sa.Text),
        sa.Column("contact_phone", sa.Text),
        sa.Column("voivodeship", sa.String(32)),
        sa.Column("city", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_member_profiles_voivodeship", "member_profiles", ["voivodeship"])
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("cluster", ID, nullable=False),
        sa.Column("member", ID),
        sa.Column("display_name", sa.Text),
        sa.Column("must_change_password", sa.Boolean, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("password_changed_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_users_member", "users", ["cluster", "member"])
    op.create_table(
        "web_sessions",
        sa.Column("session_sha256", sa.String(64), primary_key=True),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("last_seen_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "resource_amounts",
        sa.Column("cluster", ID, primary_key=True),
        sa.Column("member", ID, primary_key=True),
        sa.Column("resource", ID, primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("quantity", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("label", sa.Text),
        sa.Column("value", sa.Float),
        sa.Column("band_min", sa.Float),
        sa.Column("band_max", sa.Float),
    )
    op.create_index("ix_resource_amounts_quantity", "resource_amounts", ["quantity"])
    op.create_index("ix_resources_received_at", "resources", ["received_at"])
    op.create_index("ix_resources_free_hours", "resources", ["free_hours"])
    _backfill_amounts()


def _backfill_amounts() -> None:
    """Fill ``resource_amounts`` from the payloads of the offers stored before this revision."""
    resources = sa.table(
        "resources",
        sa.column("cluster"),
        sa.column("member"),
        sa.column("resource"),
        sa.column("payload"),
    )
    amounts = sa.table(
        "resource_amounts",
        *(
            sa.column(name)
            for name in (
                "cluster",
                "member",
                "resource",
                "position",
                "quantity",
                "unit",
                "label",
                "value",
                "band_min",
                "band_max",
            )
        ),
    )
    connection = op.get_bind()
    stored = connection.execute(
        sa.select(
            resources.c.cluster, resources.c.member, resources.c.resource, resources.c.payload
        )
    ).all()
    for row in stored:
        payload = json.loads(row.payload)
        rows = amount_rows((row.cluster, row.member, row.resource), payload.get("amounts", []))
        if rows:
            connection.execute(sa.insert(amounts), rows)


def downgrade() -> None:
    op.drop_index("ix_resources_free_hours", "resources")
    op.drop_index("ix_resources_received_at", "resources")
    op.drop_index("ix_resource_amounts_quantity", "resource_amounts")
    op.drop_table("resource_amounts")
    op.drop_table("server_secrets")
    op.drop_index("ix_web_sessions_expires_at", "web_sessions")
    op.drop_index("ix_web_sessions_user_id", "web_sessions")
    op.drop_table("web_sessions")
    op.drop_index("ix_users_member", "users")
    op.drop_table("users")
    op.drop_index("ix_member_profiles_voivodeship", "member_profiles")
    op.drop_table("member_profiles")
