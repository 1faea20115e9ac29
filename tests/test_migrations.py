"""Schema management: create from nothing, upgrade an older database (with a backup), refuse a
newer one and a foreign one."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import create_engine, inspect, text

from gridman.core.db import (
    Database,
    SchemaError,
    current_revision,
    head_revision,
    make_engine,
    open_database,
    resolve_url,
    upgrade_database,
)
from gridman.core.models import Base


def _raw(url_or_path) -> Database:
    url = resolve_url(url_or_path)
    return Database(make_engine(url), url)


def test_migration_from_empty_matches_models(db):
    with db.engine.connect() as c:
        insp = inspect(c)
        tables = set(insp.get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert current_revision(db) == head_revision()
    # autogenerate finds nothing to do: migrations and models agree
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from gridman.core.db import autogen_include_name

    with db.engine.connect() as c:
        # the hand-made search objects (FTS5 table, pg_trgm index) are skipped, as in env.py
        diff = compare_metadata(MigrationContext.configure(c, opts={"include_name": autogen_include_name}),
                                Base.metadata)
    assert diff == []


def _old_database_at_0001(target) -> Database:
    d = _raw(target)
    upgrade_database(d, target="0001")
    with d.engine.begin() as c:
        c.execute(text("INSERT INTO areas (uuid, version, created_at, updated_at, code, name, level, path, depth) "
                       "VALUES ('u-1', 1, '2025-01-01 00:00:00', '2025-01-01 00:00:00', '340104', '蜀山区', "
                       "'district', '/1/', 0)"))
    return d


def test_upgrade_older_sqlite_makes_a_backup_first(tmp_path):
    path = tmp_path / "old.sqlite"
    d = _old_database_at_0001(path)
    assert current_revision(d) == "0001"
    d.dispose()
    d2 = open_database(path)  # what the GUI and CLI do
    assert current_revision(d2) == head_revision()
    backups = list(tmp_path.glob("old.backup-v0001-*.sqlite"))
    assert len(backups) == 1
    con = sqlite3.connect(backups[0])
    assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0001"
    assert con.execute("SELECT name FROM areas").fetchone()[0] == "蜀山区"
    con.close()
    with d2.engine.connect() as c:
        assert c.execute(text("SELECT name FROM areas")).scalar() == "蜀山区"
        assert c.execute(text("SELECT COUNT(*) FROM tags")).scalar() >= 15
    d2.dispose()
    # opening again changes nothing and makes no second backup
    open_database(path).dispose()
    assert len(list(tmp_path.glob("old.backup-*"))) == 1


def test_upgrade_older_postgresql(pg_admin):
    if pg_admin is None:
        pytest.skip("PostgreSQL not available")
    url = pg_admin.create("t_upgrade_old")
    try:
        d = _old_database_at_0001(url)
        d.dispose()
        d2 = open_database(url)
        assert current_revision(d2) == head_revision()
        with d2.engine.connect() as c:
            assert c.execute(text("SELECT name FROM areas")).scalar() == "蜀山区"
        d2.dispose()
    finally:
        pg_admin.drop("t_upgrade_old")


def test_refuses_database_from_newer_gridman(tmp_path):
    path = tmp_path / "new.sqlite"
    open_database(path).dispose()
    e = create_engine(f"sqlite:///{path}")
    with e.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    e.dispose()
    with pytest.raises(SchemaError) as ei:
        open_database(path)
    assert "更新版本" in str(ei.value) and "9999" in str(ei.value)
    assert not list(tmp_path.glob("new.backup-*"))


def test_refuses_foreign_database(tmp_path):
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()
    with pytest.raises(SchemaError) as ei:
        open_database(path)
    assert "不是 gridman 数据库" in str(ei.value)


def test_start_up_head_check_agrees_with_alembic():
    """open_database skips importing Alembic when alembic_version equals the head read from the
    migration files; that reading must agree with Alembic's own."""
    from gridman.core.db import file_head_revision, head_revision

    assert file_head_revision() == head_revision()
