"""Bad files get a clear error and change nothing; a process killed mid-import leaves no trace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from gridman.core.services import census as ci
from gridman.core.services.errors import NotFound
from gridman.core.services.permissions import system_actor
from tests.census_util import counts, make_id, write_xlsx
from tests.helpers import build_tree

ROOT = Path(__file__).resolve().parents[1]
G1 = "340104001001001"
GOOD = [["户号", "网格", "姓名", "与户主关系"], ["B1", G1, "一", "户主"]]


def _not_a_workbook(p: Path) -> Path:
    p = p / "notes.xlsx"
    p.write_text("这不是表格，只是一段文字。\n" * 10, encoding="utf-8")
    return p


def _encrypted(p: Path) -> Path:
    # An encrypted .xlsx is an OLE2 compound file holding an "EncryptedPackage" stream.
    p = p / "secret.xlsx"
    body = bytearray(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1024)
    body += "EncryptedPackage".encode("utf-16-le") + b"\x00" * 64 + "EncryptionInfo".encode("utf-16-le")
    p.write_bytes(bytes(body))
    return p


def _corrupted(p: Path) -> Path:
    src = write_xlsx(p / "ok.xlsx", GOOD)
    data = src.read_bytes()
    out = p / "broken.xlsx"
    out.write_bytes(data[: len(data) // 2])
    return out


def _corrupted_member(p: Path) -> Path:
    src = write_xlsx(p / "ok2.xlsx", GOOD)
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as z:
        info = z.getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for k in range(start + 5, start + min(info.compress_size, 60)):
        data[k] ^= 0x5A  # garble the compressed sheet
    out = p / "garbled.xlsx"
    out.write_bytes(bytes(data))
    return out


def _empty(p: Path) -> Path:
    p = p / "empty.xlsx"
    p.write_bytes(b"")
    return p


def _empty_workbook(p: Path) -> Path:
    return write_xlsx(p / "blank.xlsx", [])


def _full_height(p: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    for r in GOOD:
        ws.append(r)
    ws.cell(1_048_576, 1, "x")  # the last row Excel has
    wb.save(p / "tall.xlsx")
    return p / "tall.xlsx"


def _zip_bomb(p: Path) -> Path:
    src = write_xlsx(p / "ok3.xlsx", GOOD)
    out = p / "bomb.xlsx"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            zout.writestr(item, zin.read(item.filename))
        zout.writestr("xl/media/padding.bin", b"\x00" * 30_000_000)  # 30 MB → ~30 KB
    return out


CASES = {
    "not_a_workbook": (_not_a_workbook, "不是 Excel 工作簿"),
    "encrypted": (_encrypted, "密码"),
    "corrupted_zip": (_corrupted, "已损坏"),
    "corrupted_member": (_corrupted_member, "损坏"),
    "empty_file": (_empty, "是空的"),
    "empty_workbook": (_empty_workbook, "找不到人口表的表头"),
    "excel_max_rows": (_full_height, "1,048,576"),
    "zip_bomb": (_zip_bomb, "压缩炸弹"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_clear_error_nothing_changed(db, tmp_path, case):
    build_tree(db)
    make, fragment = CASES[case]
    path = make(tmp_path)
    before = counts(db)
    with db.session() as s:
        admin = system_actor(s)
    t0 = time.monotonic()
    with pytest.raises(ci.ImportFileError) as exc, db.work(admin) as s:
        ci.import_census(s, admin, path=path)
    assert fragment in exc.value.message, exc.value.message
    assert exc.value.en and exc.value.en != exc.value.message
    assert time.monotonic() - t0 < 20
    assert counts(db) == before


def test_missing_file(tmp_path, db):
    with db.session() as s:
        admin = system_actor(s)
    with pytest.raises(NotFound), db.work(admin) as s:
        ci.import_census(s, admin, path=tmp_path / "nope.xlsx")


def test_csv_in_gbk(db, tmp_path):
    build_tree(db)
    p = tmp_path / "c.csv"
    p.write_bytes("户号,网格,姓名,与户主关系\r\nC1,340104001001001,陈一,户主\r\n".encode("gb18030"))
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        res = ci.import_census(s, admin, path=p)
    assert (res.status, res.inserted) == ("imported", 1)


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from gridman.core.db import open_database
    from gridman.core.services import census as ci
    from gridman.core.services.census import writing
    from gridman.core.services.permissions import system_actor
    from gridman.core.tasks import TaskState
    writing.CHUNK = 50  # many small statements, so the kill lands between two of them
    db = open_database({url!r})
    with db.session() as s:
        admin = system_actor(s)
    marker = Path({marker!r})
    def progress(f, m):
        if m.startswith("写入新增人员") and not marker.exists():
            marker.write_text(m)
            time.sleep(120)  # killed here, in the middle of the write
    with db.work(admin) as s:
        ci.import_census(s, admin, path={path!r}, task=TaskState(progress, min_interval=0))
    print("finished")
""")


def test_killed_mid_import_leaves_database_unchanged(db, tmp_path):
    build_tree(db)
    rows = [["户号", "网格", "姓名", "公民身份号码", "与户主关系"]]
    for i in range(400):
        rows.append([f"K{i // 4:04d}", G1, f"居民{i}", make_id(date(1960 + i % 40, 1 + i % 12, 1 + i % 28),
                                                              "M" if i % 2 else "F", seq=1 + i // 480),
                     "户主" if i % 4 == 0 else "子女"])
    ids = [r[3] for r in rows[1:]]
    assert len(set(ids)) == len(ids)
    path = write_xlsx(tmp_path / "big.xlsx", rows)
    before = counts(db)
    marker = tmp_path / "writing"
    script = tmp_path / "kill_me.py"
    script.write_text(KILL_SCRIPT.format(root=str(ROOT), url=db.url, marker=str(marker), path=str(path)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "写入新增人员" in marker.read_text()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    db.engine.dispose()
    assert counts(db) == before
    # and the file imports fine afterwards
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        res = ci.import_census(s, admin, path=path)
    assert res.inserted == 400 and counts(db)["residents"] == 400
