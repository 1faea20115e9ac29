"""What the frozen app must carry, computed from the source tree (no PyInstaller needed).

``packaging/gridman.spec`` takes its hidden imports and data files from here, and
``tests/test_packaging.py`` proves — without building — that everything the code loads by name
(the CLI's command modules, Alembic's env and migrations, SQLAlchemy dialects chosen by URL) and
every data file it opens (translations, the GB/T 2260 table, templates, the sample) is listed.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gridman"

# Loaded by name at run time and not visible to PyInstaller's import scan.
LIBRARY_MODULES = [
    "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.sqlite.pysqlite", "sqlalchemy.dialects.postgresql",
    "sqlalchemy.dialects.postgresql.psycopg", "psycopg", "alembic.runtime.migration", "alembic.ddl.sqlite",
    "alembic.ddl.postgresql", "logging.handlers", "shapefile", "pyproj", "python_calamine",
]


def gridman_modules() -> list[str]:
    """Every module of the gridman package (the CLI imports its command modules by name; Alembic's
    env and migration scripts are run from files)."""
    out = []
    for p in sorted(PACKAGE.rglob("*.py")):
        rel = p.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if "__pycache__" in parts or "versions" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append(".".join(parts))
    return out


def hidden_imports() -> list[str]:
    return gridman_modules() + LIBRARY_MODULES


def data_files() -> list[tuple[str, str]]:
    """(source, folder in the bundle): every non-Python file inside the package where the code
    finds it (``Path(__file__)``-relative), the migrations folder whole (Alembic runs its scripts by
    path), the templates and the sample database."""
    out = [(str(PACKAGE / "core" / "migrations"), "gridman/core/migrations")]
    for p in sorted(PACKAGE.rglob("*")):
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts \
                and "migrations" not in p.parts:
            out.append((str(p), str(p.parent.relative_to(ROOT))))
    out += [(str(ROOT / "resources"), "resources"), (str(ROOT / "sample_db"), "sample_db")]
    return out
