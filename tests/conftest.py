"""Test fixtures: every database test runs on a real SQLite file and a real PostgreSQL server.

- ``db``: an empty, migrated database (sqlite / postgresql parameters);
- ``demo_db``: a fresh copy of the deterministic demo sample on either backend.
Templates are built once per session (SQLite: a file copied per test; PostgreSQL: ``CREATE
DATABASE … TEMPLATE``), so each test gets its own database at file-copy speed.

PostgreSQL comes from ``GRIDMAN_TEST_PG_URL`` or a throwaway cluster started here. If neither is
possible the PostgreSQL half is skipped — except when ``GRIDMAN_REQUIRE_PG=1`` (``make test``
and CI), where that is an error.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gridman.core.db import Database, open_database

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

_counter = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    d = tmp_path_factory.mktemp("gridman-data")
    os.environ["GRIDMAN_DATA_DIR"] = str(d)
    os.environ.pop("GRIDMAN_DB", None)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str | None]:
    url = os.environ.get("GRIDMAN_TEST_PG_URL")
    if url:
        yield url
        return
    from tests.pgcluster import Cluster

    cluster = Cluster()
    if not cluster.available:
        if os.environ.get("GRIDMAN_REQUIRE_PG") == "1":
            pytest.fail("PostgreSQL is required (GRIDMAN_REQUIRE_PG=1) but initdb/pg_ctl were not found")
        yield None
        return
    try:
        url = cluster.start()
    except Exception as exc:  # pragma: no cover - environment problem
        if os.environ.get("GRIDMAN_REQUIRE_PG") == "1":
            raise
        pytest.skip(f"could not start PostgreSQL: {exc}")
    try:
        yield url
    finally:
        cluster.stop()


class PgAdmin:
    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.engine = create_engine(server_url, isolation_level="AUTOCOMMIT")

    def url_for(self, name: str) -> str:
        return str(make_url(self.server_url).set(database=name).render_as_string(hide_password=False))

    def create(self, name: str, template: str | None = None) -> str:
        with self.engine.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
        return self.url_for(name)

    def drop(self, name: str) -> None:
        with self.engine.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_admin(pg_server_url: str | None) -> PgAdmin | None:
    return PgAdmin(pg_server_url) if pg_server_url else None


def _build_templates(kind: str, tmp_factory: pytest.TempPathFactory, pg_admin: PgAdmin | None,
                     build) -> dict[str, str]:  # type: ignore[no-untyped-def]
    out: dict[str, str] = {}
    d = tmp_factory.mktemp(f"tpl-{kind}")
    path = d / f"{kind}.sqlite"
    database = open_database(path)
    build(database)
    database.dispose()
    out["sqlite"] = str(path)
    if pg_admin is not None:
        name = f"tpl_{kind}"
        url = pg_admin.create(name)
        database = open_database(url)
        build(database)
        database.dispose()
        out["postgresql"] = name
    return out


@pytest.fixture(scope="session")
def empty_templates(tmp_path_factory: pytest.TempPathFactory, pg_admin: PgAdmin | None) -> dict[str, str]:
    return _build_templates("empty", tmp_path_factory, pg_admin, lambda d: None)


@pytest.fixture(scope="session")
def demo_templates(tmp_path_factory: pytest.TempPathFactory, pg_admin: PgAdmin | None) -> dict[str, str]:
    from gridman.core.sample import generate

    return _build_templates("demo", tmp_path_factory, pg_admin, lambda d: generate(d, scale="demo"))


def _instance(request: pytest.FixtureRequest, templates: dict[str, str], pg_admin: PgAdmin | None,
              tmp_path: Path) -> Iterator[Database]:
    backend = request.param
    if backend == "sqlite":
        path = tmp_path / "gridman.sqlite"
        shutil.copyfile(templates["sqlite"], path)
        database = open_database(path)
        yield database
        database.dispose()
        return
    if pg_admin is None:
        pytest.skip("PostgreSQL not available")
    name = f"t_{os.getpid()}_{next(_counter)}"
    url = pg_admin.create(name, template=templates["postgresql"])
    database = open_database(url)
    try:
        yield database
    finally:
        database.dispose()
        pg_admin.drop(name)


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, empty_templates: dict[str, str], pg_admin: PgAdmin | None,
       tmp_path: Path) -> Iterator[Database]:
    yield from _instance(request, empty_templates, pg_admin, tmp_path)


@pytest.fixture(params=BACKENDS)
def demo_db(request: pytest.FixtureRequest, demo_templates: dict[str, str], pg_admin: PgAdmin | None,
            tmp_path: Path) -> Iterator[Database]:
    yield from _instance(request, demo_templates, pg_admin, tmp_path)


def _sqlite_copy(template: str, path: Path) -> Iterator[Database]:
    shutil.copyfile(template, path)
    database = open_database(path)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(empty_templates: dict[str, str], tmp_path: Path) -> Iterator[Database]:
    """An empty database on SQLite only (SQLite-specific paths)."""
    yield from _sqlite_copy(empty_templates["sqlite"], tmp_path / "empty.sqlite")


@pytest.fixture
def sqlite_demo(demo_templates: dict[str, str], tmp_path: Path) -> Iterator[Database]:
    """The demo database on SQLite only (GUI tests)."""
    yield from _sqlite_copy(demo_templates["sqlite"], tmp_path / "demo.sqlite")
