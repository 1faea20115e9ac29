"""The census CLI speaks JSON: import (dry run, report, undo, list), export, template, monthly report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import openpyxl

from tests.census_util import make_id, write_xlsx
from tests.helpers import signed_in

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_db" / "gridman-demo.sqlite"


def gm(db: Path, *args: str, user: str = "admin") -> tuple[int, dict | None, str]:
    r = subprocess.run([sys.executable, "-m", "gridman", *signed_in(db, user), *args], capture_output=True,
                       text=True, cwd=ROOT)
    out = json.loads(r.stdout) if r.stdout.strip().startswith("{") else None
    return r.returncode, out, r.stderr


def test_cli_import_export_report_round(tmp_path):
    db = tmp_path / "demo.sqlite"
    shutil.copyfile(SAMPLE, db)
    grid = "340104001001001"
    rows = [["户号", "网格", "姓名", "公民身份号码", "与户主关系"],
            ["CLI1", grid, "命令一", make_id(date(1970, 1, 1), "M", area="340102"), "户主"],
            ["CLI1", grid, "命令二", "12345", "配偶"]]
    wb = write_xlsx(tmp_path / "in.xlsx", rows)
    rc, out, err = gm(db, "import", "census", str(wb), "--dry-run", "--json")
    assert rc == 1 and out["status"] == "rejected" and out["errors"] == 1, err
    assert out["issues"][0]["row"] == 3 and out["issues"][0]["code"] == "id_length"
    rc, out, err = gm(db, "import", "census", str(wb), "--policy", "quarantine",
                      "--report", str(tmp_path / "r.xlsx"), "--json", user="clerk")
    assert rc == 0 and (out["inserted"], out["rejected"]) == (1, 1), err
    assert openpyxl.load_workbook(out["report"])["导入问题"].max_row == 2
    batch = out["batch_id"]
    rc, out, _ = gm(db, "import", "list", "--json")
    assert out["imports"][0]["id"] == batch and out["imports"][0]["username"] == "clerk"
    rc, out, err = gm(db, "import", "census", str(wb), user="warden")
    assert rc == 2 and "无权导入" in err
    rc, out, err = gm(db, "export", "residents", "--out", str(tmp_path / "r2.xlsx"),
                      "--filter", "household_no=CLI1", "--json", user="clerk")
    assert rc == 0 and out["rows"] == 1 and out["masked_ids"] is True, err
    rc, out, err = gm(db, "export", "template", "households", "--out", str(tmp_path / "t.xlsx"), "--json")
    assert rc == 0 and Path(out["path"]).exists(), err
    rc, out, err = gm(db, "report", "monthly", "--area", "340104001", "--month", "2026-03", "--out",
                      str(tmp_path / "m.xlsx"), "--json")
    assert rc == 0 and out["incidents"] > 0, err
    rc, out, err = gm(db, "import", "undo", str(batch), "--json")
    assert rc == 0 and out["residents_deleted"] == 1 and out["households_deleted"] == 1, err
    rc, out, err = gm(db, "import", "undo", str(batch), "--json")
    assert rc == 2 and "已撤销" in err
    rc, out, err = gm(db, "export", "cats", "--out", str(tmp_path / "x.xlsx"))
    assert rc == 2 and "未知的列表" in err
