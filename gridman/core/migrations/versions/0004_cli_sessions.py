"""cli sessions: ``gridman login`` sessions (only the hash of each token)

Revision ID: 0004_cli_sessions
Revises: 0003_mediation
Create Date: 2026-12-02

One table, ``cli_sessions``: who signed in, the SHA-256 of the random token kept in the user's
0600 session file, when it was made, when it expires and when it was ended (logout). Disabling an
account ends its sessions (the account is checked on every use).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_cli_sessions"
down_revision = "0003_mediation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cli_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_cli_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cli_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_cli_sessions_token_hash")),
    )
    with op.batch_alter_table("cli_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cli_sessions_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cli_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cli_sessions_user_id"))
    op.drop_table("cli_sessions")
