"""View and edit one resident (实有人口信息), with checks as you type and the change history.

Saving goes through ``people.update_resident(expected_version=…)``: if someone else saved the
resident meanwhile the service raises ConflictError and the form offers "重新加载" (reload).
"""

from __future__ import annotations

from typing import Any

from gridman.core import enums, fields
from gridman.core.services import people, registers
from gridman.core.services.errors import ConflictError, ValidationError
from gridman.core.services.permissions import Actor, Perm, sees_ids
from gridman.gui.errors import show_error
from gridman.gui.i18n import language, local_time, tr
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
    Signal,
)
from gridman.gui.validation import check_date, check_id, check_required

ERR_STYLE = "border: 1px solid #d93025; background: #fdecea;"
RESIDENT_FIELDS = fields.get("residents")


def field_label(key: str) -> str:
    """A resident field's label from the field catalogue (the key itself if it has none)."""
    fd = RESIDENT_FIELDS.by_key.get(key)
    return fd.label(language()) if fd is not None else key


def enum_combo(enum: type, *, blank: bool = False) -> QComboBox:
    cb = QComboBox()
    if blank:
        cb.addItem("", None)
    for v in enum:
        cb.addItem(enums.label(v, language()), v.value)
    return cb


def set_combo(cb: QComboBox, value: Any) -> None:
    i = cb.findData(value)
    cb.setCurrentIndex(max(i, 0))


class ResidentDialog(QDialog):
    saved = Signal(int)

    TEXT_FIELDS = ("name", "citizen_id", "birth_date", "phone", "ethnicity", "current_address",
                   "registered_address", "employer", "note")

    def __init__(self, runner: OpRunner, actor: Actor, resident_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor, self.resident_id = runner, actor, resident_id
        self.version: int | None = None
        self.original: dict[str, Any] = {}
        self.conflict_box: QMessageBox | None = None
        self.setWindowTitle(tr("人员信息"))
        self.setMinimumSize(560, 560)
        lay = QVBoxLayout(self)
        self.tabs = QTabWidget()
        lay.addWidget(self.tabs)
        page = QWidget()
        form = QFormLayout(page)
        self.edits: dict[str, QLineEdit] = {}
        self.combos: dict[str, QComboBox] = {
            "sex": enum_combo(enums.Sex, blank=True),
            "population_type": enum_combo(enums.PopulationType),
            "relation_to_head": enum_combo(enums.Relation, blank=True),
            "status": enum_combo(enums.ResidentStatus),
        }
        order = ("name", "sex", "citizen_id", "birth_date", "population_type", "relation_to_head", "phone",
                 "ethnicity", "current_address", "registered_address", "employer", "status", "note")
        for key in order:
            if key in self.combos:
                w = self.combos[key]
                w.currentIndexChanged.connect(lambda _i: self.validate())
            else:
                w = QLineEdit()
                w.textEdited.connect(lambda _t: self.validate())
                self.edits[key] = w
            w.setObjectName(key)
            form.addRow(field_label(key) + ("*" if key == "name" else ""), w)
        self.edits["birth_date"].setPlaceholderText("1980-05-17")
        self.message = QLabel()
        self.message.setObjectName("message")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020;")
        form.addRow(self.message)
        self.tabs.addTab(page, tr("基本信息"))
        self.history = QTableWidget(0, 4)
        self.history.setHorizontalHeaderLabels([tr("时间"), tr("操作人"), tr("操作"), tr("变更内容")])
        self.history.horizontalHeader().setStretchLastSection(True)
        self.history.verticalHeader().setVisible(False)
        self.tabs.addTab(self.history, tr("修改记录"))
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Close)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setText(tr("保存"))
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setText(tr("关闭"))
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.can_write = actor.can(Perm.WRITE)
        self.show_id = sees_ids(actor)
        self.save_button.setEnabled(False)
        self.loaded = False
        self.reload()

    # --- load ----------------------------------------------------------------------------
    def reload(self) -> None:
        actor, rid = self.actor, self.resident_id

        def job(s, _t):  # type: ignore[no-untyped-def]
            r = people.get_resident(s, actor, rid)
            data = {k: getattr(r, k) for k in people.EDITABLE_FIELDS}
            view = people.view_resident(s, actor, rid)
            data["citizen_id"] = view.citizen_id
            return r.version, data, registers.resident_history(s, actor, rid)

        self.runner.run(job, on_done=self._loaded, on_error=lambda e: show_error(self, e), label="resident")

    def _loaded(self, result: tuple[int, dict[str, Any], list[registers.HistoryEntry]]) -> None:
        self.version, data, history = result
        self.original = dict(data)
        for k, w in self.edits.items():
            v = data.get(k)
            w.setText("" if v is None else (v.isoformat() if hasattr(v, "isoformat") else str(v)))
        for k, cb in self.combos.items():
            set_combo(cb, data.get(k))
        self.edits["citizen_id"].setReadOnly(not self.show_id)
        for w in [*self.edits.values(), *self.combos.values()]:
            w.setEnabled(self.can_write)
        self.setWindowTitle(tr("人员信息 — {name}").format(name=data.get("name") or ""))
        self.history.setRowCount(len(history))
        for i, h in enumerate(history):
            change = "；".join(f"{field_label(k)}: {self._change(v)}"
                               for k, v in (h.changes or {}).items() if k not in ("version", "updated_at"))
            for j, text in enumerate((local_time(h.at), h.username or "", self._action(h.action),
                                      change or (h.note or ""))):
                item = QTableWidgetItem(text)
                if j == 3:
                    item.setToolTip(text.replace("；", "\n"))  # the whole change when the cell cuts it
                self.history.setItem(i, j, item)
        self.history.resizeColumnsToContents()
        self.loaded = True
        self.validate()

    @staticmethod
    def _change(v: Any) -> str:
        """'old → new'; a value set where there was none (a new record): just the value."""
        if isinstance(v, list) and len(v) == 2:
            old, new = ("" if x is None else ", ".join(map(str, x)) if isinstance(x, list) else str(x) for x in v)
            return f"{old} → {new}" if v[0] is not None else new
        return str(v)

    @staticmethod
    def _action(a: str) -> str:
        return {"insert": tr("新增"), "update": tr("修改"), "delete": tr("删除")}.get(a, a)

    # --- validate as you type ------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: (w.text().strip() or None) for k, w in self.edits.items()}
        for k, cb in self.combos.items():
            out[k] = cb.currentData()
        return out

    def validate(self) -> bool:
        errors: list[str] = []
        for w in self.edits.values():
            w.setStyleSheet("")

        def bad(key: str, msg: str) -> None:
            self.edits[key].setStyleSheet(ERR_STYLE)
            errors.append(msg)

        v = self.values()
        if (m := check_required(v["name"] or "", tr("姓名"))):
            bad("name", m)
        info = None
        if self.show_id:
            m, info = check_id(v["citizen_id"] or "")
            if m:
                bad("citizen_id", m)
        m, born = check_date(v["birth_date"] or "")
        if m:
            bad("birth_date", m)
        if info is not None and born is not None and born != info.birth_date:
            bad("birth_date", tr("出生日期与身份证号不一致"))
        if info is not None and v["sex"] and v["sex"] != info.sex:
            errors.append(tr("性别与身份证号不一致"))
        phone = v["phone"] or ""
        if phone and not phone.replace("-", "").isdigit():
            bad("phone", tr("电话号码只能包含数字和“-”"))
        self.message.setText("\n".join(errors))
        ok = not errors and self.loaded and self.can_write
        self.save_button.setEnabled(ok and bool(self.changes()))
        return not errors

    def changes(self) -> dict[str, Any]:
        v = self.values()
        out: dict[str, Any] = {}
        for k, new in v.items():
            old = self.original.get(k)
            if k == "citizen_id" and not self.show_id:
                continue
            if k == "birth_date":
                _m, new = check_date(new or "")
            if k == "citizen_id" and new:
                new = new.upper()
            if (old or None) != (new or None):
                out[k] = new
        return out

    # --- save ----------------------------------------------------------------------------
    def save(self) -> None:
        if not self.validate():
            return
        ch = self.changes()
        if not ch:
            self.accept()
            return
        actor, rid, ver = self.actor, self.resident_id, self.version
        self.save_button.setEnabled(False)
        self.message.setText(tr("正在保存…"))

        def job(s, _t):  # type: ignore[no-untyped-def]
            r = people.update_resident(s, actor, rid, expected_version=ver, **ch)
            return r.id

        self.runner.run(job, mode="write", on_done=self._saved, on_error=self._save_failed, label="update-resident")

    def _saved(self, rid: int) -> None:
        self.message.setText("")
        self.saved.emit(rid)
        self.accept()

    def _save_failed(self, exc: BaseException) -> None:
        self.message.setText("")
        self.validate()
        if isinstance(exc, ConflictError):
            box = QMessageBox(self)
            box.setObjectName("conflictBox")
            box.setIcon(QMessageBox.Icon.Warning)
            box.setWindowTitle(tr("信息已被他人修改"))
            box.setText(exc.text(language()))
            box.setInformativeText(tr("点击“重新加载”查看最新信息；您的修改需要重新填写。"))
            self.reload_button = box.addButton(tr("重新加载"), QMessageBox.ButtonRole.AcceptRole)
            box.addButton(tr("取消"), QMessageBox.ButtonRole.RejectRole)
            self.reload_button.clicked.connect(self.reload)
            self.conflict_box = box
            box.open()
            return
        if isinstance(exc, ValidationError) and exc.field in self.edits:
            self.edits[exc.field].setStyleSheet(ERR_STYLE)
        show_error(self, exc)
