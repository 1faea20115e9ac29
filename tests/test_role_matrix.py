"""The role × action matrix (issue #16): every CLI command and sub-command × every kind of account,
inside and outside its scope, with the expected outcome of each cell (the table: ``tests/role_matrix.py``).

The commands come from the real parser, so a command added without rows fails
:func:`test_every_command_has_rows`. Each cell runs ``gridman.cli.main`` in-process on its own copy
of a prepared demo database (the committed sample plus three accounts, two cases, two census
imports and exchange packages on each side of the street boundary), then checks the outcome:

- ok: exit 0, the effect happened, the output of a scoped account holds nothing of the far street;
- refused: exit 2, a translated message (no raw exception), nothing changed — audit log included;
- not_found: the very answer the same command gives for an id that does not exist.

A representative subset (one row per command group) runs on PostgreSQL too.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine

from gridman.cli import build_parser, main
from gridman.core.db import Database, open_database
from gridman.core.enums import Role
from gridman.core.models import Area, Base, Resident
from gridman.core.services import auth, census, exchange
from gridman.core.services import mediation as med
from gridman.core.services.geometry import export_geojson, geojson_text
from gridman.core.services.permissions import system_actor
from tests import role_matrix as rm
from tests.census_util import make_id, write_xlsx
from tests.helpers import make_user, signed_in

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_db" / "gridman-demo.sqlite"

CODES = {"G_IN": "340104001001001", "G_IN2": "340104001001002", "G_OUT": "340104002001001",
         "G_OUT2": "340104002001002", "C_IN": "340104001001", "S_IN": "340104001", "S_OUT": "340104002"}
RES_IN, RES_OUT, BLD_OUT = 77, 4373, None  # 丁香菊 (第1网格, 怡景园) and 丁思琰 (琥珀西园 第1网格)
SIGN_IN_TABLES = ("audit_log", "users")  # a refused sign-in may count a failure and audit it


# --- the parser's commands ---------------------------------------------------------------------------


def parser_commands() -> set[str]:
    """Every leaf command of the CLI ("incidents act", "stats", …), walked from the real parser."""
    import argparse

    out: set[str] = set()

    def walk(p: argparse.ArgumentParser, prefix: str) -> None:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            out.add(prefix)
            return
        for name, child in subs[0].choices.items():
            walk(child, f"{prefix} {name}".strip())

    walk(build_parser(), "")
    return out


def test_every_command_has_rows() -> None:
    have = {c.command for c in rm.CASES}
    commands = parser_commands() | set(rm.HIDDEN_COMMANDS)
    missing = sorted(commands - have)
    assert not missing, "no expectation for " + ", ".join(missing) + " (add rows to tests/role_matrix.py)"
    stale = sorted(have - commands)
    assert not stale, "rows for commands the parser does not have: " + ", ".join(stale)
    keys = [c.key for c in rm.CASES]
    assert len(keys) == len(set(keys)), "duplicate rows"
    for c in rm.CASES:
        c.outcome("admin")  # one outcome per account
    for (key, account), _cause in rm.KNOWN_WRONG.items():
        assert key in keys and account in rm.ACCOUNTS, (key, account)


# --- the world: a prepared demo copy and the files the commands read -----------------------------------


def _accounts(db: Database) -> None:
    with db.session() as s:
        street = s.scalar(select(Area.id).where(Area.code == CODES["S_IN"]))
    make_user(db, rm.USERNAMES["aclerk"], Role.CLERK, area_id=street)
    make_user(db, rm.USERNAMES["nogrid"], Role.WARDEN)
    off = make_user(db, rm.USERNAMES["disabled"], Role.CLERK)
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        auth.update_user(s, admin, off.user_id or 0, active=False)


def _cases(db: Database, w: dict[str, str]) -> None:
    with db.session() as s:
        admin = system_actor(s)
        grid = {k: s.scalar(select(Area.id).where(Area.code == CODES[k])) for k in ("G_IN", "G_OUT")}
        from gridman.core.models import Building

        w["bld_out"] = str(s.scalar(select(Building.id).where(Building.grid_id == grid["G_OUT"]).limit(1)))
    with db.work(admin) as s:
        w["inc_in"] = str(med.report(s, admin, grid_id=grid["G_IN"] or 0, category="hazard", title="矩阵事件甲",
                                     parties=[med.PartyInput(resident_id=RES_IN)]).incident_id)
        w["inc_out"] = str(med.report(s, admin, grid_id=grid["G_OUT"] or 0, category="dispute", title="矩阵事件乙",
                                      parties=[med.PartyInput(resident_id=RES_OUT)]).incident_id)
        # a case of the near grid naming the far resident (only an administrator can make one)
        w["inc_mixed"] = str(med.report(s, admin, grid_id=grid["G_IN"] or 0, category="dispute", title="矩阵事件丙",
                                        parties=[med.PartyInput(resident_id=RES_OUT)]).incident_id)


def _census(db: Database, d: Path, w: dict[str, str]) -> None:
    head = ["户号", "网格", "姓名", "公民身份号码", "与户主关系"]

    def book(name: str, grid: str, person: str, cid: str) -> Path:
        return write_xlsx(d / name, [head, [f"MX{person}", grid, person, cid, "户主"]])

    w["census_in"] = str(book("census_in.xlsx", CODES["G_IN"], "矩阵甲", make_id(date(1971, 1, 1), "M", area="340102")))
    w["census_out"] = str(book("census_out.xlsx", CODES["G_OUT"], "矩阵乙", make_id(date(1972, 1, 1), "M", area="340102")))
    w["census_rematch"] = str(book("census_rematch.xlsx", CODES["G_IN"], rm.FAR_MARKERS[0], rm.FAR_MARKERS[1]))
    w["census_oracle"] = str(book("census_oracle.xlsx", CODES["G_IN"], "矩阵丙", rm.FAR_MARKERS[1]))
    undo_in = book("undo_in.xlsx", CODES["G_IN"], "矩阵丁", make_id(date(1973, 1, 1), "F", area="340102"))
    undo_out = book("琥珀导入.xlsx", CODES["G_OUT"], "矩阵戊", make_id(date(1974, 1, 1), "F", area="340102"))
    mixed = write_xlsx(d / "mixed.xlsx", [head, ["MX己", CODES["G_IN"], "矩阵己", make_id(date(1975, 1, 1), "M", area="340102"), "户主"],
                                          ["MX庚", CODES["G_OUT"], "矩阵庚", make_id(date(1976, 1, 1), "M", area="340102"), "户主"]])
    with db.session() as s:
        admin = system_actor(s)
    for key, path, area in (("batch_in", undo_in, "G_IN"), ("batch_out", undo_out, "G_OUT"), ("batch_mixed", mixed, None)):
        with db.work(admin) as s:
            res = census.import_census(s, admin, path=path, area_code=CODES[area] if area else None)
        assert res.batch_id, res.summary()
        w[key] = str(res.batch_id)


def _exchange(db: Database, d: Path, w: dict[str, str]) -> None:
    with db.session() as s:
        admin = system_actor(s)
    for side in ("in", "out"):  # a package checked in (for undo), then one to check in
        grid = CODES["G_IN" if side == "in" else "G_OUT"]
        with db.work(admin) as s:
            exchange.checkout(s, admin, out=d / f"xundo_{side}.xlsx", grid_codes=[grid])
        with db.work(admin) as s:
            res = exchange.checkin(s, admin, path=d / f"xundo_{side}.xlsx")
        assert res.batch_id, res.summary()
        w[f"xbatch_{side}"] = str(res.batch_id)
        with db.work(admin) as s:
            pkg = exchange.checkout(s, admin, out=d / f"xbook_{side}.xlsx", grid_codes=[grid])
        w[f"xbook_{side}"] = str(d / f"xbook_{side}.xlsx")
        w[f"xpkg_{side}"] = pkg.package_id


def _geo(db: Database, d: Path, w: dict[str, str]) -> None:
    import shapely
    from shapely.geometry import shape

    with db.session() as s:
        admin = system_actor(s)
        for side, key in (("in", "G_IN"), ("out", "G_OUT")):
            area = s.scalar(select(Area.id).where(Area.code == CODES[key]))
            fc = export_geojson(s, admin, area_id=area or 0, levels=["grid"])
            fc["features"] = [f for f in fc["features"] if f["properties"]["code"] == CODES[key]]
            fc["features"][0]["properties"]["name"] = f"矩阵改名{side}"
            (d / f"geo_{side}.geojson").write_text(geojson_text(fc), encoding="utf-8")
            w[f"geo_{side}"] = str(d / f"geo_{side}.geojson")
            c = shape(fc["features"][0]["geometry"]).centroid
            x0, y0, x1, y1 = shape(fc["features"][0]["geometry"]).bounds
            w[f"line_{side}"] = shapely.to_wkt(shapely.LineString([(c.x, y0 - 0.01), (c.x, y1 + 0.01)]))


def build_world(db: Database, files: Path) -> dict[str, str]:
    """Prepare ``db`` (a demo copy) for the matrix; the files the commands read go to ``files``."""
    w: dict[str, str] = dict(CODES, res_in=str(RES_IN), res_out=str(RES_OUT))
    _accounts(db)
    _cases(db, w)
    _census(db, files, w)
    _exchange(db, files, w)
    _geo(db, files, w)
    local = open_database(files / "local.sqlite")
    try:
        with local.session() as s:
            sysact = system_actor(s)
        with local.work(sysact) as s:
            exchange.open_package(s, sysact, path=w["xbook_in"])
    finally:
        local.dispose()
    w["local_template"] = str(files / "local.sqlite")
    pw = files / "new-password.txt"  # a password that passes the policy (users add / passwd)
    pw.write_text("Matrix#2026pw\n", encoding="utf-8")
    pw.chmod(0o600)
    w["pw_file"] = str(pw)
    with db.session() as s:
        w["n_residents"] = str(s.scalar(select(func.count()).select_from(Resident)))
    return w


@dataclass
class World:
    template: Path  # the prepared SQLite database
    values: dict[str, str]
    cells: Path  # a folder for the cells' copies


def fast_parser() -> Any:
    """``main`` builds the whole parser on every call (~80 ms); the cells share one, built once."""
    parser = build_parser()
    return lambda: parser


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    mp = pytest.MonkeyPatch()
    mp.setattr("gridman.cli.build_parser", fast_parser())
    d = tmp_path_factory.mktemp("matrix")
    path = d / "template.sqlite"
    shutil.copyfile(SAMPLE, path)
    db = open_database(path)
    try:
        values = build_world(db, d)
    finally:
        db.dispose()
    for user in rm.USERNAMES.values():
        signed_in(str(path), user)  # sign-in state a copy of the template carries along
    cells = d / "cells"
    cells.mkdir()
    yield World(path, values, cells)
    mp.undo()


# --- running one cell ----------------------------------------------------------------------------------


def fingerprint(engine: Engine, skip: tuple[str, ...] = ()) -> dict[str, tuple]:
    """Per table: rows, the largest id, the sum of versions, the last update — what any write moves."""
    out: dict[str, tuple] = {}
    with engine.connect() as c:
        for t in Base.metadata.sorted_tables:
            if t.name in skip or "session" in t.name:
                continue
            cols = ["count(*)"]
            for name, agg in (("id", "max"), ("version", "sum"), ("updated_at", "max"), ("status", "max")):
                if name in t.c:
                    cols.append(f"{agg}({name})")
            out[t.name] = tuple(c.execute(text(f"SELECT {', '.join(cols)} FROM {t.name}")).one())
    return out


def _fill(template: str, values: dict[str, str]) -> list[str]:
    return [tok.format(**values) for tok in template.split()]


def _query(engine: Engine, sql: str, values: dict[str, str]) -> Any:
    with engine.connect() as c:
        return c.execute(text(sql.format(**values))).all()


@dataclass
class Run:
    rc: int
    out: str
    err: str
    files: str  # the text of the files the command wrote


def _files_text(folder: Path, skip: set[str]) -> str:
    parts = []
    for p in sorted(folder.iterdir()):
        if p.name in skip or p.name.startswith(("db.", "local.")) or not p.is_file():
            continue
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as z:
                parts += [z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".xml")]
        elif p.suffix != ".sqlite":
            parts.append(p.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def invoke(argv: list[str], folder: Path) -> Run:
    out, err = io.StringIO(), io.StringIO()
    before = {p.name for p in folder.iterdir()}
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse
            rc = int(exc.code or 0)
    return Run(rc, out.getvalue(), err.getvalue(), _files_text(folder, before))


def _norm(s: str) -> str:
    return re.sub(r"\d+", "#", s)


def classify(run: Run, missing: Run | None) -> str:
    """The outcome of a run; exit 2 is not_found when it answers exactly as ``missing`` (the same
    command naming an id that does not exist) — else refused."""
    if run.rc == 0:
        return "ok"
    if run.rc == 1:
        return "rejected"
    if run.rc == 2:
        if missing is not None and missing.rc == 2 and _norm(missing.err) == _norm(run.err):
            return "not_found"
        return "refused"
    return f"exit {run.rc}"


@dataclass
class Cell:
    outcome: str
    problems: list[str]


def _leaks(case: rm.Case, account: str, said: str, v: dict[str, str]) -> list[str]:
    if account in rm.UNRESTRICTED:
        return []
    if account in rm.SIGN_IN_FAILS and case.expect == rm.SYSTEM:
        return []  # the unauthenticated system commands answer whoever holds the database file or URL
    markers = [m for m in rm.FAR_MARKERS if m not in case.known] + [m.format(**v) for m in case.leaks]
    return [f"output shows out-of-scope {m!r}" for m in markers if m in said]


def run_cell(case: rm.Case, account: str, db_arg: str, engine: Engine, folder: Path,
             values: dict[str, str]) -> Cell:
    """Run one cell against ``db_arg`` and check it; the problems found besides the outcome."""
    v = dict(values, out_xlsx=str(folder / "out.xlsx"), out_geojson=str(folder / "out.geojson"),
             out_db=str(folder / "new.sqlite"), local_db=str(folder / "local.sqlite"))
    expected = case.outcome(account)
    argv = [*signed_in(db_arg, rm.USERNAMES[account]), *_fill(case.argv, v)]
    skip = SIGN_IN_TABLES if account in rm.SIGN_IN_FAILS else ()
    if case.audited:  # a check that writes nothing but its own audit row (who looked up which IDs)
        skip = (*skip, "audit_log")
    fp = fingerprint(engine, skip) if expected != "ok" else None
    effect = _query(engine, case.effect, v) if case.effect else None
    guard = _query(engine, case.guard, v) if case.guard else None
    run = invoke(argv, folder)
    missing = None
    if run.rc == 2 and expected == "not_found":
        missing = invoke([*signed_in(db_arg, rm.USERNAMES[account]), *_fill(case.argv, dict(v, **rm.MISSING))],
                         folder)
    outcome = classify(run, missing)
    said = run.out + run.err + run.files
    problems = _leaks(case, account, said, v)
    if "Traceback" in said or "意外错误" in said:
        problems.append("raw error: " + run.err[-300:])
    if case.guard and account not in rm.UNRESTRICTED and _query(engine, case.guard, v) != guard:
        problems.append("changed the far street's rows")
    if outcome == "ok":
        if case.effect and _query(engine, case.effect, v) == effect:
            problems.append("exit 0 but the effect did not happen")
        if account in rm.UNRESTRICTED:  # the leak check can fail: what it looks for is there
            shown = [rm.FAR_MARKERS[0]] if case.shows_far else []
            if account == "admin" or not case.admin_details:
                shown += [m.format(**v) for m in case.leaks]
            problems += [f"{m!r} missing from an unrestricted output" for m in shown if m not in said]
    elif fp is not None and outcome in ("refused", "not_found", "rejected"):
        message = run.err if outcome != "rejected" else run.out + run.err
        if not re.search(r"[\u4e00-\u9fff]", message):
            problems.append(f"refused without a translated message: {message[-200:]!r}")
        after = fingerprint(engine, skip)
        if after != fp:
            problems.append("refused but changed: " + ", ".join(k for k in fp if fp[k] != after.get(k)))
    return Cell(outcome, problems)


def _engine(db_arg: str) -> Engine:
    return create_engine(db_arg if "://" in db_arg else f"sqlite:///{db_arg}")


@contextlib.contextmanager
def cell_folder(w: World, name: str) -> Iterator[Path]:
    folder = w.cells / name
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sqlite_cell(w: World, case: rm.Case, account: str) -> Cell:
    with cell_folder(w, re.sub(r"\W", "_", f"{case.key}-{account}")) as folder:
        db = folder / "db.sqlite"
        shutil.copyfile(w.template, db)
        if case.local:
            shutil.copyfile(w.values["local_template"], folder / "local.sqlite")
        engine = _engine(str(db))
        try:
            return run_cell(case, account, str(db), engine, folder, w.values)
        finally:
            engine.dispose()


def _params() -> list[Any]:
    out = []
    for case in rm.CASES:
        for account in rm.ACCOUNTS:
            cause = rm.KNOWN_WRONG.get((case.key, account))
            marks = [pytest.mark.xfail(strict=True, reason=cause)] if cause else []
            out.append(pytest.param(case, account, id=f"{case.key}-{account}", marks=marks))
    return out


@pytest.mark.parametrize(("case", "account"), _params())
def test_cell(world: World, case: rm.Case, account: str) -> None:
    cell = sqlite_cell(world, case, account)
    assert (cell.outcome, cell.problems) == (case.outcome(account), []), f"{case.argv!r} as {account}"


# --- PostgreSQL: one row per command group ------------------------------------------------------------

PG_ROWS = ("db check/-", "stats mediation/out", "areas measure/out", "grids check/out", "incidents show/out",
           "incidents report/party_out", "import list/-", "export/residents_out", "report monthly/out",
           "exchange list/-")


@pytest.mark.parametrize("demo_db", ["postgresql"], indirect=True)
def test_representative_rows_on_postgresql(demo_db: Database, tmp_path: Path) -> None:
    """The same cells on PostgreSQL, one database for all (these rows write nothing when refused,
    and an ok cell's effect does not disturb the next)."""
    db = demo_db
    files = tmp_path / "files"
    files.mkdir()
    values = build_world(db, files)
    w = World(Path(), values, tmp_path / "cells")
    w.cells.mkdir()
    url = db.engine.url.render_as_string(hide_password=False)
    wrong = []
    cases = {c.key: c for c in rm.CASES}
    for key in PG_ROWS:
        case = cases[key]
        for account in rm.ACCOUNTS:
            with cell_folder(w, re.sub(r"\W", "_", f"{key}-{account}")) as folder:
                cell = run_cell(case, account, url, db.engine, folder, values)
            got = (cell.outcome, cell.problems)
            if got != (case.outcome(account), []) and (key, account) not in rm.KNOWN_WRONG:
                wrong.append(f"{key} as {account}: {got}")
    assert not wrong, "\n".join(wrong)
