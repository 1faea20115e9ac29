"""Every user-visible string of the GUI is in the English catalog, and no Chinese literal
bypasses tr() (source parsed with ast, so a new string fails here until it is translated)."""

from __future__ import annotations

import json
import re

from gridman.gui import i18n
from gridman.gui.i18n_check import report


def test_no_user_visible_string_is_missing_from_the_catalog():
    missing, strays = report()
    assert not missing, f"add English for: {missing}"
    assert not strays, "Chinese text outside tr()/N_():\n" + "\n".join(strays)


def test_catalog_entries_keep_their_placeholders():
    cat = json.loads(i18n.CATALOG_PATH.read_text(encoding="utf-8"))
    for zh, en in cat.items():
        assert set(re.findall(r"\{(\w+)", zh)) == set(re.findall(r"\{(\w+)", en)), zh
        assert not re.search(r"[\u3400-\u9fff]", en), en


def test_tr_switches_language():
    i18n.set_language("en")
    try:
        assert i18n.tr("统计看板") == "Dashboard"
    finally:
        i18n.set_language("zh_CN")
    assert i18n.tr("统计看板") == "统计看板"


def test_english_window_shows_no_chinese_interface_text(qtbot, sqlite_demo, signed_in):
    """Menus, tabs, buttons, labels and filter choices in English (data such as names of people
    and areas stay as entered)."""
    from gridman.gui.main_window import MainWindow
    from gridman.gui.qt import QAction, QComboBox, QLabel, QPushButton, QTabWidget

    i18n.set_language("en")
    try:
        win = MainWindow(sqlite_demo, signed_in("admin"))
        qtbot.addWidget(win)
        with qtbot.waitSignal(win.tree_loaded, timeout=15_000):
            win.show()
        for i in range(6):
            win.show_view(i)
            qtbot.waitUntil(lambda: win.runner.pending == 0, timeout=15_000)
        han = re.compile(r"[\u3400-\u9fff]")
        texts: list[str] = [a.text() for a in win.findChildren(QAction)]
        for tabs in win.findChildren(QTabWidget):
            texts += [tabs.tabText(i) for i in range(tabs.count())]
        texts += [b.text() for b in win.findChildren(QPushButton)]
        texts += [lb.text() for lb in win.findChildren(QLabel)
                  if lb not in (win.user_label, win.area_label) and not lb.text().startswith("<span")]
        for cb in win.findChildren(QComboBox):
            if cb is win.residents.tag:  # tag names are reference data with an English column
                continue
            texts += [cb.itemText(i) for i in range(cb.count())]
        for v in win.registers.values():
            m = v.model
            texts += [m.headerData(c, __import__("PySide6.QtCore").QtCore.Qt.Orientation.Horizontal)
                      for c in range(m.columnCount())]
        texts += [win.model.headerData(c, __import__("PySide6.QtCore").QtCore.Qt.Orientation.Horizontal)
                  for c in range(win.model.columnCount())]
        bad = sorted({t for t in texts if t and han.search(t) and t != "中文"})
        assert not bad, bad
        win.close()
        win.runner.wait()
    finally:
        i18n.set_language("zh_CN")


def test_switching_language_from_the_settings_menu_rebuilds_the_window(qtbot, sqlite_demo, signed_in):
    from gridman.gui.main_window import MainWindow
    from gridman.gui.settings import app_settings

    win = MainWindow(sqlite_demo, signed_in("street"))  # not qtbot.addWidget: it deletes itself when replaced
    with qtbot.waitSignal(win.tree_loaded, timeout=15_000):
        win.show()
    win.show_view(3)
    assert win.tabs.tabText(0) == "地图"
    try:
        with qtbot.waitSignal(win.language_switched, timeout=10_000) as blocker:
            win.lang_actions["en"].trigger()
        new = blocker.args[0]
        qtbot.addWidget(new)
        assert new.tabs.tabText(0) == "Map" and new.menuBar().actions()[0].text() == "&File"
        assert new.tabs.currentIndex() == 3  # the open view survives the switch
        assert not win.isVisible() and new.isVisible()
        destroyed = []
        win.destroyed.connect(lambda *_a: destroyed.append(True))
        qtbot.waitUntil(lambda: bool(destroyed), timeout=15_000)  # retired once its jobs delivered
        assert app_settings().value("ui/language") == "en"
        qtbot.waitUntil(lambda: new.runner.pending == 0, timeout=15_000)
        new.close()
        new.runner.wait()
    finally:
        i18n.set_language("zh_CN")
