"""Render the main views offscreen with a CJK font and save PNGs into docs/screenshots/.

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py [--lang en]

Works on a temporary copy of the committed demo database (never opened read-write) and on
temporary settings, so it changes nothing of the user's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lang", default="zh_CN")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gridman-shots-"))
    os.environ["GRIDMAN_DATA_DIR"] = str(tmp / "data")
    from gridman.gui.qt import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    from gridman.gui.app import make_app

    app = make_app()
    from gridman.core.db import open_database
    from gridman.core.services.auth import authenticate
    from gridman.gui.dialogs.signin import SignInDialog
    from gridman.gui.i18n import set_language
    from gridman.gui.main_window import MainWindow
    from gridman.gui.ops import OpRunner

    set_language(args.lang)
    db_path = tmp / "demo.sqlite"
    shutil.copyfile(ROOT / "sample_db" / "gridman-demo.sqlite", db_path)
    db = open_database(db_path)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.lang == "zh_CN" else f"-{args.lang}"

    def settle(runner: OpRunner, extra: float = 0.3) -> None:
        deadline = time.time() + 20
        while time.time() < deadline:
            app.processEvents()
            if runner.pending == 0:
                break
            time.sleep(0.02)
        end = time.time() + extra
        while time.time() < end:
            app.processEvents()
            time.sleep(0.02)

    def save(widget, name: str) -> None:  # type: ignore[no-untyped-def]
        path = out / f"{name}{suffix}.png"
        widget.grab().save(str(path))
        print(path.relative_to(ROOT))

    runner = OpRunner(db)
    dlg = SignInDialog(runner)
    dlg.username.setText("warden")
    dlg.password.setText("gridman123")
    dlg.show()
    settle(runner)
    save(dlg, "sign-in")
    dlg.close()

    with db.begin() as s:
        street = authenticate(s, "street", "gridman123")
        admin = authenticate(s, "admin", "gridman123")
    win = MainWindow(db, street, runner=OpRunner(db, street))
    win.resize(1440, 880)
    win.show()
    settle(win.runner)
    for i, name in ((0, "map"), (1, "register"), (3, "incidents"), (4, "dashboard")):
        win.show_view(i)
        settle(win.runner, 0.6)
        save(win, name)
    win.show_view(2)
    settle(win.runner, 0.3)
    save(win, "register-households")
    # the resident form with its history, the case view, the household form
    win.show_view(1)
    settle(win.runner)
    d = win.open_row("residents", win.residents.model.ids[0])
    settle(win.runner)
    save(d, "resident-form")
    d.close()
    win.show_view(3)
    settle(win.runner)
    c = win.incidents.open_case(win.incidents.model.ids[0])
    settle(win.runner)
    save(c, "case-view")
    c.close()
    f = win.register_household()
    settle(win.runner)
    f.household_no.setText("3401040010010019999")
    f.address.setText("马鞍山路翡翠苑9栋101室")
    from datetime import date

    from gridman.core import idcard

    f.add_member(name="王建国", citizen_id=idcard.make("340104", date(1980, 3, 4), 1, "M"), relation="head")
    f.add_member(name="李秀英", citizen_id="34010419820506002", relation="spouse")
    f.validate()
    settle(win.runner)
    save(f, "household-form")
    f.close()
    win.close()
    win.runner.wait()
    awin = MainWindow(db, admin, runner=OpRunner(db, admin))
    awin.resize(1440, 880)
    awin.show()
    settle(awin.runner)
    awin.select_area(next(iter(awin.area_items)))
    awin.show_view(5)
    settle(awin.runner, 0.5)
    save(awin, "admin")
    awin.show_view(0)
    settle(awin.runner, 0.6)
    save(awin, "map-city")
    awin.close()
    awin.runner.wait()
    db.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
