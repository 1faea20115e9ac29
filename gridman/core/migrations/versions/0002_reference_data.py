"""reference data: tags, default time limits, the built-in system account, the database id

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from gridman.core.reference import DEFAULT_TIME_LIMITS, TAGS

    now = datetime.now(UTC).replace(tzinfo=None)
    tags = sa.table(
        "tags", sa.column("code"), sa.column("name"), sa.column("name_en"), sa.column("category"),
        sa.column("sensitive", sa.Boolean), sa.column("synonyms"),
    )
    op.bulk_insert(tags, [
        {"code": c, "name": n, "name_en": e, "category": cat, "sensitive": sens, "synonyms": syn}
        for c, n, e, cat, sens, syn in TAGS
    ])
    policies = sa.table(
        "time_limit_policies", sa.column("level"), sa.column("category"), sa.column("days"),
        sa.column("working_days", sa.Boolean), sa.column("updated_at", sa.DateTime),
    )
    op.bulk_insert(policies, [
        {"level": lv, "category": cat, "days": d, "working_days": wd, "updated_at": now}
        for lv, cat, d, wd in DEFAULT_TIME_LIMITS
    ])
    users = sa.table(
        "users", sa.column("uuid"), sa.column("version"), sa.column("created_at", sa.DateTime),
        sa.column("updated_at", sa.DateTime), sa.column("username"), sa.column("display_name"),
        sa.column("password_hash"), sa.column("role"), sa.column("active", sa.Boolean),
        sa.column("is_system", sa.Boolean),
    )
    # '!' can never match a scrypt hash: the system account cannot sign in.
    op.bulk_insert(users, [{
        "uuid": str(uuid.uuid4()), "version": 1, "created_at": now, "updated_at": now, "username": "system",
        "display_name": "系统管理员", "password_hash": "!", "role": "admin", "active": True, "is_system": True,
    }])
    settings = sa.table("settings", sa.column("key"), sa.column("value", sa.JSON), sa.column("updated_at", sa.DateTime))
    op.bulk_insert(settings, [{"key": "database_id", "value": str(uuid.uuid4()), "updated_at": now}])


def downgrade() -> None:
    op.execute("DELETE FROM settings WHERE key = 'database_id'")
    op.execute("DELETE FROM users WHERE username = 'system'")
    op.execute("DELETE FROM time_limit_policies")
    op.execute("DELETE FROM tags")
