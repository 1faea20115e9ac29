"""The frozen app carries what the code loads by name and every data file it opens — proved on
the source, without building (``make package`` builds and smoke-tests the real thing)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))
import manifest  # noqa: E402

# modules whose Path(__file__) use is for developers, never run by the installed app
DEV_ONLY = {"gridman/gui/i18n_check.py"}


def sources() -> list[Path]:
    return [p for p in sorted((ROOT / "gridman").rglob("*.py")) if "__pycache__" not in p.parts]


def test_every_module_loaded_by_name_is_a_hidden_import():
    from gridman.cli import COMMAND_MODULES

    hidden = set(manifest.hidden_imports())
    missing = [m for m in COMMAND_MODULES if m not in hidden]
    for p in sources():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if name in ("import_module", "__import__") and node.args[0].value.startswith("gridman"):
                    if node.args[0].value not in hidden:
                        missing.append(f"{p.relative_to(ROOT)}: {node.args[0].value}")
    assert not missing, missing
    assert "gridman.core.migrations.env" in hidden and "sqlalchemy.dialects.postgresql.psycopg" in hidden


def _covered(path: Path, datas: list[tuple[str, str]]) -> bool:
    path = path.resolve()
    return any(path == Path(src).resolve() or Path(src).resolve() in path.parents for src, _dst in datas)


def test_every_data_file_the_code_opens_is_bundled_where_the_code_looks():
    datas = manifest.data_files()
    opened = []
    for p in sources():
        rel = str(p.relative_to(ROOT))
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Assign) or not any(
                    isinstance(n, ast.Name) and n.id == "__file__" for n in ast.walk(node.value)):
                continue
            value = eval(compile(ast.Expression(node.value), rel, "eval"), {"Path": Path, "__file__": str(p)})  # noqa: S307
            if isinstance(value, Path) and rel not in DEV_ONLY:
                opened.append((rel, value))
    assert len(opened) >= 4  # translations, divisions table, templates, migrations at least
    missing = [f"{rel}: {path}" for rel, path in opened if not _covered(path, datas)]
    assert not missing, missing
    for src, dst in datas:  # each lands where Path(__file__) finds it in the bundle
        s = Path(src)
        assert s.exists(), src
        if s.is_file() and s.is_relative_to(ROOT / "gridman"):
            assert dst == str(s.parent.relative_to(ROOT)), (src, dst)
    assert _covered(ROOT / "gridman" / "gui" / "translations" / "en.json", datas)
    assert _covered(ROOT / "gridman" / "core" / "divisions.csv", datas)


def test_the_spec_takes_its_lists_from_the_manifest_and_ships_a_console_cli():
    spec = (ROOT / "packaging" / "gridman.spec").read_text(encoding="utf-8")
    assert "manifest.data_files()" in spec and "manifest.hidden_imports()" in spec
    assert 'name="gridman-cli", console=True' in spec  # the CLI's output is visible on Windows
    assert (ROOT / "packaging" / "windows" / "gridman.iss").exists()
    assert (ROOT / "packaging" / "deb" / "build.sh").exists()
