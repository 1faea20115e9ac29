"""landline: a resident's second phone number (固定电话)

Revision ID: 0005_landline
Revises: 0004_cli_sessions
Create Date: 2026-12-02

Census sheets often carry two phone columns (联系电话 + 固定电话, or two 电话 columns); the second
is kept here instead of refusing the workbook (issue 16).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_landline"
down_revision = "0004_cli_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("residents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("landline", sa.String(length=30), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("residents", schema=None) as batch_op:
        batch_op.drop_column("landline")
