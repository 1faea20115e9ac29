"""``gridman incidents …`` and ``gridman stats mediation`` in a subprocess, speaking JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from gridman.core.db import open_database
from gridman.core.services.mediation import figures as mf
from gridman.core.services.permissions import system_actor
from tests.helpers import signed_in

ROOT = Path(__file__).resolve().parents[1]


def run(db: Path, *args: str, as_user: str | None = None) -> subprocess.CompletedProcess:
    pre = signed_in(db, as_user or "admin")
    return subprocess.run([sys.executable, "-m", "gridman", *pre, *args], capture_output=True, text=True, cwd=ROOT)


def ok(r: subprocess.CompletedProcess) -> dict:
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_cli_walk(demo_templates, tmp_path):
    db = tmp_path / "demo.sqlite"
    shutil.copyfile(demo_templates["sqlite"], db)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8 a photo")
    now = "2026-11-01T09:00"
    rep = ok(run(db, "incidents", "report", "--grid", "340104001001001", "--category", "矛盾纠纷", "--subcategory",
                 "neighbour", "--title", "装修噪音引发邻里纠纷", "--description", "夜间施工", "--party", "赵六",
                 "--attach", str(photo), "--now", now, "--json"))  # --now: administrators only
    iid = rep["incident_id"]
    assert (rep["level"], rep["status"], rep["version"]) == ("grid", "reported", 1)
    assert rep["due_at"] == "2026-11-04T09:00:00"
    r = ok(run(db, "incidents", "act", str(iid), "accept", "--version", "1", "--json", as_user="warden"))
    assert (r["status"], r["version"]) == ("accepted", 2)
    r = ok(run(db, "incidents", "act", str(iid), "escalate", "--to", "community", "--note", "网格无法调处",
               "--json", as_user="warden"))
    assert (r["level"], r["status"]) == ("community", "reported")
    # refused: a warden on a community-level case, a stale version
    bad = run(db, "incidents", "act", str(iid), "accept", "--json", as_user="warden")
    assert bad.returncode == 2 and "社区层级" in bad.stderr and bad.stdout == ""
    bad = run(db, "incidents", "act", str(iid), "accept", "--version", "2", "--json", as_user="community")
    assert bad.returncode == 2 and "已被其他人处理" in bad.stderr
    show = ok(run(db, "incidents", "show", str(iid), "--json"))
    assert [s["action"] for s in show["steps"]] == ["report", "accept", "escalate"]
    assert show["parties"][0]["name"] == "赵六" and show["attachments"][0]["size"] == photo.stat().st_size
    assert (db.parent / "attachments" / show["attachments"][0]["sha256"][:2]).is_dir()

    q = ok(run(db, "incidents", "queue", "--area", "340104001", "--limit", "5", "--now", now, "--json"))
    assert len(q["rows"]) == 5 and q["rows"][0]["overdue"] is True
    assert sum(q["counts"].values()) == q["total"]
    qt = ok(run(db, "incidents", "queue", "--text", "装修噪音", "--level", "community", "--json"))
    assert iid in [row["id"] for row in qt["rows"]]

    sweep = ok(run(db, "incidents", "escalate-overdue", "--now", now, "--json"))
    assert sweep["escalated"] > 0 and iid not in sweep["escalated_ids"]
    again = ok(run(db, "incidents", "escalate-overdue", "--now", now, "--json"))
    assert (again["escalated"], again["flagged"]) == (0, 0)

    pol = ok(run(db, "incidents", "policy", "--set", "grid", "5", "--working-days", "--json"))
    assert {"level": "grid", "category": None, "days": 5, "working_days": True} in pol["policies"]

    stats = ok(run(db, "stats", "mediation", "--area", "340104001", "--from", "2026-01-01", "--to", "2026-12-31",
                   "--json"))
    d = open_database(db)
    try:
        with d.session() as s:
            from gridman.core.services.areas import by_code

            admin = system_actor(s)
            f = mf.figures(s, admin, by_code(s, "340104001").id, *map(__import__("datetime").date.fromisoformat,
                                                                     ("2026-01-01", "2026-12-31")))
    finally:
        d.dispose()
    assert stats["reported"] == f.reported and stats["closed"] == f.closed and stats["reported"] > 100
    assert stats["closure_rate"] == f.closure_rate and stats["referrals"] == f.referrals
    human = run(db, "stats", "mediation")
    assert human.returncode == 0 and "结案率" in human.stdout and "矛盾不上交" in human.stdout


def test_cli_bulk_act_and_options_from_the_declaration(demo_templates, tmp_path):
    """``incidents act ACTION ID ID …``: each case in a savepoint, the refused ones listed with the
    reason; required options come from the action's declaration."""
    from gridman.core.models import User
    from gridman.core.services import mediation
    from gridman.core.services.mediation import user_id
    from gridman.core.services.permissions import actor_for

    db = tmp_path / "demo.sqlite"
    shutil.copyfile(demo_templates["sqlite"], db)
    d = open_database(db)
    try:
        with d.session() as s:
            warden = actor_for(s, s.get(User, user_id(s, "warden")))
        with d.work(warden) as s:
            new = [mediation.report(s, warden, grid_id=min(warden.grid_ids), category="hazard", title=f"井盖缺失 {i}")
                   for i in range(3)]
            fresh = [r.incident_id for r in new[:2]]
            taken = mediation.accept(s, warden, new[2].incident_id, expected_version=1).incident_id  # accepted already
    finally:
        d.dispose()
    assert len(fresh) == 2
    r = run(db, "incidents", "act", "accept", *map(str, fresh), str(taken), "--note", "批量受理", "--json",
            as_user="warden")
    assert r.returncode == 1, r.stderr  # some were skipped
    out = json.loads(r.stdout)
    assert out["action"] == "accept" and out["done"] == fresh
    assert [sk["incident_id"] for sk in out["skipped"]] == [taken]
    assert "不能“受理”" in out["skipped"][0]["reason"] and out["skipped"][0]["reason_en"]
    assert [x["status"] for x in out["results"]] == ["accepted", "accepted"]
    again = run(db, "incidents", "act", "accept", *map(str, fresh), as_user="warden")
    assert again.returncode == 1 and "完成 0 件" in again.stdout and "跳过 2 件" in again.stdout
    # a required option missing: named with its label, nothing done
    bad = run(db, "incidents", "act", "refer", str(fresh[0]), "--json", as_user="warden")
    assert bad.returncode == 2 and "--to" in bad.stderr and "分流去向" in bad.stderr
    bad = run(db, "incidents", "act", "escalate", str(fresh[0]), "--to", "street", "--note", "x", as_user="warden")
    assert bad.returncode == 2 and "只能上报到相邻一级" in bad.stderr
    # assign names the handler by username (looked up by the service)
    r = ok(run(db, "incidents", "act", "assign", str(fresh[0]), "--to", "warden", "--json", as_user="warden"))
    assert r["status"] == "accepted" and r["version"] == 3
