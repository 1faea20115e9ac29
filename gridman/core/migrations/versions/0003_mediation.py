"""mediation: queue indexes, full-text search of incidents (SQLite FTS5 trigram / PostgreSQL pg_trgm)

Revision ID: 0003_mediation
Revises: 0002
Create Date: 2026-11-22

- B-tree indexes for the supervisor's queue: (street|community|grid, due_at) and (due_at) walk an
  area's active cases in deadline order (closed and merged cases have no due_at), so the first page
  is an index range scan with LIMIT; (merged_into_id) finds a case's merged duplicates.
- SQLite: ``incidents_fts``, an external-content FTS5 table over title and description with the
  trigram tokenizer (substring search in Chinese without a word segmenter), kept in sync by
  triggers, and filled here for the incidents already in the database.
- PostgreSQL: a GIN pg_trgm index on ``coalesce(title,'') || ' ' || coalesce(description,'')``
  if the extension can be created; otherwise nothing (the search still works, by a scan).
The FTS table, its shadow tables and the trigram index are not in the models: autogenerate skips
them (``gridman.core.db.autogen_include_name``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_mediation"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_incidents_street_due", ["street_id", "due_at"]),
    ("ix_incidents_community_due", ["community_id", "due_at"]),
    ("ix_incidents_grid_due", ["grid_id", "due_at"]),
    ("ix_incidents_due", ["due_at"]),
    ("ix_incidents_merged_into", ["merged_into_id"]),
]

# Must be written exactly like this in queries, or PostgreSQL will not use the index.
PG_TEXT_EXPR = "(coalesce(title, '') || ' ' || coalesce(description, ''))"

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE incidents_fts USING fts5(title, description, content='incidents', "
    "content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER incidents_fts_ai AFTER INSERT ON incidents BEGIN "
    "INSERT INTO incidents_fts(rowid, title, description) VALUES (new.id, new.title, new.description); END",
    "CREATE TRIGGER incidents_fts_ad AFTER DELETE ON incidents BEGIN "
    "INSERT INTO incidents_fts(incidents_fts, rowid, title, description) "
    "VALUES ('delete', old.id, old.title, old.description); END",
    "CREATE TRIGGER incidents_fts_au AFTER UPDATE OF title, description ON incidents BEGIN "
    "INSERT INTO incidents_fts(incidents_fts, rowid, title, description) "
    "VALUES ('delete', old.id, old.title, old.description); "
    "INSERT INTO incidents_fts(rowid, title, description) VALUES (new.id, new.title, new.description); END",
    "INSERT INTO incidents_fts(rowid, title, description) SELECT id, title, description FROM incidents",
]


def _pg_trgm_ready(bind: sa.engine.Connection) -> bool:
    if bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).scalar():
        return True
    if not bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).scalar():
        return False
    try:
        with bind.begin_nested():  # a refusal (no privilege) must not abort the migration
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        return False
    return True


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        for name, cols in INDEXES:
            batch_op.create_index(name, cols, unique=False)
    if bind.dialect.name == "sqlite":
        for stmt in SQLITE_FTS:
            op.execute(stmt)
    elif bind.dialect.name == "postgresql" and _pg_trgm_ready(bind):
        op.execute(f"CREATE INDEX ix_incidents_text_trgm ON incidents USING gin ({PG_TEXT_EXPR} gin_trgm_ops)")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for trg in ("incidents_fts_ai", "incidents_fts_ad", "incidents_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trg}")
        op.execute("DROP TABLE IF EXISTS incidents_fts")
    elif bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_incidents_text_trgm")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        for name, _cols in reversed(INDEXES):
            batch_op.drop_index(name)
