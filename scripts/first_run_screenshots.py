"""Render the first-run setup wizard offscreen, filled in as an office would, in both languages:
docs/screenshots/first_run_zh.png and first_run_en.png.

    QT_QPA_PLATFORM=offscreen python scripts/first_run_screenshots.py

Works on a new temporary database and temporary settings; changes nothing of the user's.
"""

from __future__ import annotations

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
    tmp = Path(tempfile.mkdtemp(prefix="gridman-first-run-"))
    os.environ["GRIDMAN_DATA_DIR"] = str(tmp / "data")
    from gridman.gui.qt import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    from gridman.core.db import open_database
    from gridman.gui.app import make_app
    from gridman.gui.dialogs.setup_wizard import SetupWizard
    from gridman.gui.i18n import set_language
    from gridman.gui.ops import OpRunner

    app = make_app()
    db = open_database(tmp / "new.sqlite")
    out = ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    for lang, suffix in (("zh_CN", "zh"), ("en", "en")):
        set_language(lang)
        runner = OpRunner(db)
        w = SetupWizard(runner)
        w.office.setText("蜀山区网格化服务管理中心" if lang == "zh_CN" else "Shushan District Grid Management Centre")
        w.display_name.setText("王主任" if lang == "zh_CN" else "Wang Wei")
        w.password.setText("Shushan#2026")
        w.password2.setText("Shushan#2026")
        w.area_name.setText("合肥市")
        w.show()
        w.office.deselect()
        w.buttons.setFocus()
        for _ in range(2):  # let the wrapped notes find their height, then fit the dialog to them
            end = time.time() + 0.3
            while time.time() < end:
                app.processEvents()
                time.sleep(0.02)
            w.resize(w.sizeHint())  # not adjustSize(): it caps at 2/3 of the 800×800 offscreen screen
        path = out / f"first_run_{suffix}.png"
        w.grab().save(str(path))
        print(path.relative_to(ROOT))
        w.close()
        runner.wait()
    db.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
