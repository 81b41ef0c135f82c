"""Mark the current offers that have an audience, so searches need no lookup for the others.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "resources",
        sa.Column("restricted", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    resources = sa.table(
        "resources",
        sa.column("cluster"),
        sa.column("member"),
        sa.column("resource"),
        sa.column("restricted", sa.Boolean),
    )
    audience = sa.table(
        "resource_audience", sa.column("cluster"), sa.column("member"), sa.column("resource")
    )
    op.execute(
        sa.update(resources)
        .where(
            sa.exists().where(
                audience.c.cluster == resources.c.cluster,
                audience.c.member == resources.c.member,
                audience.c.resource == resources.c.resource,
            )
        )
        .values(restricted=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("restricted")
