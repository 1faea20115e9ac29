"""The sample writer is deterministic and matches sample_db/; the CLI speaks JSON and exits
non-zero on errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from gridman.core import idcard
from gridman.core.db import open_database
from gridman.core.enums import Role
from gridman.core.models import Area, Household, Incident, Resident, User, WardenAssignment
from gridman.core.sample import iter_rows_digest
from tests.helpers import make_user, signed_in

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_db" / "gridman-demo.sqlite"


def gridman(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gridman", *args], capture_output=True, text=True, cwd=cwd or ROOT)


def test_sample_reproduces_committed_sample_db_and_checks_ok(tmp_path):
    out = tmp_path / "x.sqlite"
    r = gridman("sample", "--out", str(out), "--scale", "demo", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["scale"] == "demo"
    # the committed file is opened read-only: a test must never modify it
    a, b = open_database(out), open_database(f"sqlite:///file:{SAMPLE}?mode=ro&uri=true", upgrade=False)
    try:
        assert dict(iter_rows_digest(a)) == dict(iter_rows_digest(b))
    finally:
        a.dispose()
        b.dispose()
    r = gridman("--db", str(out), "db", "check", "--json")
    assert r.returncode == 0, r.stderr
    check = json.loads(r.stdout)
    assert check["integrity"] == "ok"
    c = check["counts"]
    assert 2900 <= c["households"] <= 3200
    assert 7600 <= c["residents"] <= 8600
    assert 1400 <= c["incidents"] <= 1600
    assert check["areas_by_level"] == {"city": 1, "district": 1, "street": 2, "community": 6, "grid": 40}


def test_other_seed_gives_other_data(tmp_path):
    a_path, b_path = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    assert gridman("sample", "--out", str(a_path), "--seed", "1").returncode == 0
    assert gridman("sample", "--out", str(b_path), "--seed", "2").returncode == 0
    a, b = open_database(a_path), open_database(b_path)
    da, dbb = dict(iter_rows_digest(a)), dict(iter_rows_digest(b))
    a.dispose()
    b.dispose()
    assert da["residents"] != dbb["residents"]


def test_demo_sample_content_is_realistic(demo_db):
    with demo_db.session() as s:
        ids = list(s.scalars(select(Resident.citizen_id).where(Resident.citizen_id.is_not(None))))
        assert len(ids) == len(set(ids)) > 7000
        for r in s.execute(select(Resident.citizen_id, Resident.birth_date, Resident.sex)
                           .where(Resident.citizen_id.is_not(None))):
            info = idcard.parse(r.citizen_id)
            assert (info.birth_date, info.sex) == (r.birth_date, r.sex)
        streets = set(s.scalars(select(Area.name).where(Area.level == "street")))
        assert streets == {"笔架山街道", "琥珀街道"}
        n_grids = s.scalar(select(func.count()).select_from(Area).where(Area.level == "grid"))
        n_wardens = s.scalar(select(func.count(func.distinct(WardenAssignment.user_id))))
        assert 1.5 <= n_wardens / n_grids <= 2.0
        # every household has exactly one head
        heads = s.execute(select(Resident.household_id, func.count()).where(Resident.relation_to_head == "head")
                          .group_by(Resident.household_id)).all()
        assert len(heads) == s.scalar(select(func.count()).select_from(Household))
        assert {n for _, n in heads} == {1}
        # incidents at every level and in every main status
        levels = set(s.scalars(select(Incident.level).distinct()))
        statuses = set(s.scalars(select(Incident.status).distinct()))
        assert levels == {"grid", "community", "street"}
        assert {"reported", "accepted", "in_progress", "resolved", "closed", "failed", "referred"} <= statuses
        roles = set(s.scalars(select(User.role).where(User.is_system.is_(False))))
        assert roles == {"admin", "clerk", "warden", "community_staff", "street_supervisor"}


def test_sample_grids_tile_their_community(demo_db):
    import shapely
    from shapely.ops import unary_union

    with demo_db.session() as s:
        comms = s.scalars(select(Area).where(Area.level == "community")).all()
        for c in comms:
            grids = s.scalars(select(Area).where(Area.parent_id == c.id)).all()
            polys = [shapely.from_wkb(g.boundary) for g in grids]
            parent = shapely.from_wkb(c.boundary)
            assert abs(unary_union(polys).area - parent.area) < parent.area * 1e-9
            assert abs(sum(p.area for p in polys) - parent.area) < parent.area * 1e-9  # no overlaps
        from gridman.core.models import Building

        for b in s.scalars(select(Building)):
            g = s.get(Area, b.grid_id)
            assert shapely.from_wkb(g.boundary).contains(shapely.Point(b.lon, b.lat))


def test_cli_errors_go_to_stderr_with_exit_code(tmp_path):
    db = tmp_path / "e.sqlite"
    gridman("--db", str(db), "db", "init")  # a missing --db is refused (issue #16)
    r = gridman("--db", str(db), "--as", "nobody", "stats", "--json")  # a name without its password
    assert r.returncode == 2 and r.stdout == "" and "请先登录" in r.stderr
    (tmp_path / "exists.sqlite").write_bytes(b"")
    r = gridman("sample", "--out", str(tmp_path / "exists.sqlite"))
    assert r.returncode == 2 and "已存在" in r.stderr


def test_cli_stats_and_db_commands(tmp_path):
    db = tmp_path / "s.sqlite"
    r = gridman("--db", str(db), "db", "init", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["created"] is True
    r = gridman("--db", str(db), "db", "upgrade", "--json")
    assert json.loads(r.stdout)["changed"] is False
    database = open_database(db)
    make_user(database, "admin", Role.ADMIN)  # a fresh database has no account to sign in with
    database.dispose()
    r = gridman(*signed_in(db), "stats", "--json")
    out = json.loads(r.stdout)
    assert out["tables"]["tags"] >= 15 and out["areas_by_level"] == {}


def test_python_dash_m_and_env_db(tmp_path):
    import os

    env = {**os.environ, "GRIDMAN_DB": str(tmp_path / "env.sqlite")}
    # the file must exist (a missing --db is refused, issue #16): db init creates it
    subprocess.run([sys.executable, "-m", "gridman", "db", "init"], check=True, capture_output=True, env=env, cwd=ROOT)
    r = subprocess.run([sys.executable, "-m", "gridman", "db", "check", "--json"], capture_output=True, text=True,
                       env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["url"].endswith("env.sqlite")


def test_sample_ids_stay_unique_and_consistent_when_a_day_is_full():
    """More people born on one day in one area than sequence numbers: the ID moves to the day
    before and the generator stores that date, so ID and birth date still agree."""
    from datetime import date

    from gridman.core.sample import Rand, _Generator

    g = _Generator.__new__(_Generator)  # only the ID allocator is exercised
    g.rng, g.id_seq = Rand(1), {}
    got = [g.citizen_id("340104", date(1990, 1, 1), "M") for _ in range(1200)]
    assert len({cid for cid, _ in got}) == 1200
    assert all(idcard.parse(cid).birth_date == born for cid, born in got)
    assert {born for _, born in got} >= {date(1990, 1, 1), date(1989, 12, 31)}
