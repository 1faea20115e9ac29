"""accounts: sign-in lockout counters on users

Revision ID: 0006_accounts
Revises: 0005_landline
Create Date: 2026-12-02

- ``users.failed_logins``: failed sign-ins in the current window (reset by a good sign-in, an
  expired lock or an administrator's unlock);
- ``users.first_failed_at``: when the current window of failures began;
- ``users.locked_until``: the account refuses every sign-in until then (see
  ``gridman.core.services.lockout``). Existing accounts start unlocked with no failures.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_accounts"
down_revision = "0005_landline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as b:
        b.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
        b.add_column(sa.Column("first_failed_at", sa.DateTime(), nullable=True))
        b.add_column(sa.Column("locked_until", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as b:
        b.drop_column("locked_until")
        b.drop_column("first_failed_at")
        b.drop_column("failed_logins")
