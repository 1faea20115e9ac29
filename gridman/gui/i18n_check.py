"""Find user-visible strings in gridman.gui that the English catalog lacks (used by the test and
by ``python -m gridman.gui.i18n_check`` to list what needs translating)."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

HAN = re.compile(r"[\u3400-\u9fff]")
MARKERS = {"tr", "N_"}
GUI_DIR = Path(__file__).parent


def _is_docstring(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    p = parents.get(node)
    return isinstance(p, ast.Expr) and isinstance(parents.get(p), (ast.Module, ast.FunctionDef, ast.ClassDef,
                                                                    ast.AsyncFunctionDef))


def scan(path: Path) -> tuple[list[str], list[tuple[int, str]]]:
    """(strings passed to tr()/N_(), Chinese literals outside them as (line, text))."""
    src = path.read_text(encoding="utf-8")
    lines = src.splitlines()
    tree = ast.parse(src)
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    marked: list[str] = []
    marked_nodes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in MARKERS:
            for a in node.args[:1]:
                if isinstance(a, ast.Constant) and isinstance(a.value, str):
                    marked.append(a.value)
                    marked_nodes.add(id(a))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "pick":
            for a in node.args[:1]:  # pick(zh, en): the pair carries both languages
                marked_nodes.add(id(a))
    stray: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and HAN.search(node.value):
            if id(node) in marked_nodes or _is_docstring(node, parents):
                continue
            line = lines[node.lineno - 1] if node.lineno - 1 < len(lines) else ""
            if "i18n-exempt" in line:
                continue
            stray.append((node.lineno, node.value))
    return marked, stray


def report() -> tuple[list[str], list[str]]:
    """(missing catalog entries, stray literals as 'file:line: text')."""
    from gridman.gui.i18n import CATALOG_PATH

    cat = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    missing: list[str] = []
    strays: list[str] = []
    for path in sorted(GUI_DIR.rglob("*.py")):
        marked, stray = scan(path)
        for s in marked:
            if HAN.search(s) and not cat.get(s) and s not in missing:
                missing.append(s)
        strays += [f"{path.relative_to(GUI_DIR.parent.parent)}:{ln}: {t}" for ln, t in stray]
    return missing, strays


if __name__ == "__main__":
    miss, stray = report()
    print(json.dumps({m: "" for m in miss}, ensure_ascii=False, indent=1))
    for s in stray:
        print("STRAY", s, file=sys.stderr)
