"""Register a household with its members (登记新户), and view a household with its members.

Registering calls ``people.register_household`` in one unit of work (all members or nothing).
Each member row is checked as you type (name required, ID check digit, exactly one head).
"""

from __future__ import annotations

from typing import Any

from gridman.core import enums
from gridman.core.services import people, registers
from gridman.core.services.permissions import Actor, Perm
from gridman.gui.dialogs.resident_form import ERR_STYLE, enum_combo, field_label, set_combo
from gridman.gui.errors import show_error
from gridman.gui.i18n import language, tr
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    Signal,
)
from gridman.gui.validation import check_id, check_required

MEMBER_COLS = ("name", "citizen_id", "relation_to_head", "population_type", "phone")  # resident fields


class HouseholdForm(QDialog):
    """登记新户: grid, household number, address, phone and the members."""

    registered = Signal(int)

    def __init__(self, runner: OpRunner, actor: Actor, *, grid_id: int | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        self.household_id: int | None = None
        self.setWindowTitle(tr("登记新户"))
        self.setMinimumSize(820, 480)
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.grid = QComboBox()
        self.grid.setObjectName("grid")
        self.household_no = QLineEdit()
        self.household_no.setObjectName("household_no")
        self.address = QLineEdit()
        self.address.setObjectName("address")
        self.phone = QLineEdit()
        form.addRow(tr("网格") + "*", self.grid)
        form.addRow(tr("户号") + "*", self.household_no)
        form.addRow(tr("地址"), self.address)
        form.addRow(tr("联系电话"), self.phone)
        lay.addLayout(form)
        lay.addWidget(QLabel(tr("家庭成员（须有且只有一位户主）")))
        self.members = QTableWidget(0, len(MEMBER_COLS))
        self.members.setHorizontalHeaderLabels([field_label(c) for c in MEMBER_COLS])
        self.members.horizontalHeader().setStretchLastSection(True)
        self.members.setColumnWidth(0, 110)
        self.members.setColumnWidth(1, 190)
        self.members.setColumnWidth(2, 120)
        self.members.setColumnWidth(3, 120)
        self.members.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        lay.addWidget(self.members)
        row = QHBoxLayout()
        self.add_button = QPushButton(tr("添加成员"))
        self.add_button.setObjectName("addMember")
        self.add_button.clicked.connect(lambda: self.add_member())
        self.remove_button = QPushButton(tr("删除所选成员"))
        self.remove_button.clicked.connect(self.remove_member)
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        lay.addLayout(row)
        self.message = QLabel()
        self.message.setObjectName("message")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020;")
        lay.addWidget(self.message)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setText(tr("登记"))
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText(tr("取消"))
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        for w in (self.household_no, self.address):
            w.textEdited.connect(lambda _t: self.validate())
        self._want_grid = grid_id
        actor_ = actor
        self.runner.run(lambda s, _t: registers.grid_choices(s, actor_), on_done=self._grids, label="grids")
        self.validate()

    def _grids(self, grids: list[tuple[int, str]]) -> None:
        for gid, name in grids:
            self.grid.addItem(name, gid)
        if self._want_grid is not None:
            set_combo(self.grid, self._want_grid)
        self.validate()

    def add_member(self, *, name: str = "", citizen_id: str = "", relation: str | None = None,
                   population_type: str = "registered", phone: str = "") -> int:
        r = self.members.rowCount()
        self.members.insertRow(r)
        n, c, p = QLineEdit(name), QLineEdit(citizen_id), QLineEdit(phone)
        rel = enum_combo(enums.Relation)
        set_combo(rel, relation or ("head" if r == 0 else "spouse"))
        pop = enum_combo(enums.PopulationType)
        set_combo(pop, population_type)
        for w in (n, c, p):
            w.textEdited.connect(lambda _t: self.validate())
        for cb in (rel, pop):
            cb.currentIndexChanged.connect(lambda _i: self.validate())
        for col, w in enumerate((n, c, rel, pop, p)):
            self.members.setCellWidget(r, col, w)
        self.validate()
        return r

    def remove_member(self) -> None:
        for idx in sorted({i.row() for i in self.members.selectedIndexes()}, reverse=True):
            self.members.removeRow(idx)
        self.validate()

    def cell(self, row: int, col: int) -> Any:
        return self.members.cellWidget(row, col)

    def member_values(self) -> list[dict[str, Any]]:
        out = []
        for r in range(self.members.rowCount()):
            d = {"name": self.cell(r, 0).text().strip(), "citizen_id": self.cell(r, 1).text().strip() or None,
                 "relation_to_head": self.cell(r, 2).currentData(), "population_type": self.cell(r, 3).currentData(),
                 "phone": self.cell(r, 4).text().strip() or None}
            out.append(d)
        return out

    def validate(self) -> bool:
        errors: list[str] = []
        self.household_no.setStyleSheet("")
        if self.grid.count() == 0:
            errors.append(tr("您没有可登记的网格"))
        if (m := check_required(self.household_no.text(), tr("户号"))):
            self.household_no.setStyleSheet(ERR_STYLE)
            errors.append(m)
        heads = 0
        seen: set[str] = set()
        for r in range(self.members.rowCount()):
            name_w, id_w = self.cell(r, 0), self.cell(r, 1)
            name_w.setStyleSheet("")
            id_w.setStyleSheet("")
            if (m := check_required(name_w.text(), tr("姓名"))):
                name_w.setStyleSheet(ERR_STYLE)
                errors.append(tr("第 {n} 位成员：").format(n=r + 1) + m)
            m, info = check_id(id_w.text())
            if m:
                id_w.setStyleSheet(ERR_STYLE)
                errors.append(tr("第 {n} 位成员：").format(n=r + 1) + m)
            elif info is not None:
                if info.number in seen:
                    id_w.setStyleSheet(ERR_STYLE)
                    errors.append(tr("第 {n} 位成员：").format(n=r + 1) + tr("身份证号重复"))
                seen.add(info.number)
            if self.cell(r, 2).currentData() == "head":
                heads += 1
        if self.members.rowCount() and heads != 1:
            errors.append(tr("一户须有且只有一位户主（现有 {n} 位）").format(n=heads))
        self.message.setText("\n".join(errors))
        self.save_button.setEnabled(not errors and self.actor.can(Perm.WRITE))
        return not errors

    def save(self) -> None:
        if not self.validate():
            return
        actor = self.actor
        grid_id = int(self.grid.currentData())
        no, addr, phone = self.household_no.text().strip(), self.address.text().strip() or None, \
            self.phone.text().strip() or None
        members = self.member_values()
        self.save_button.setEnabled(False)
        self.message.setText(tr("正在登记…"))

        def job(s, _t):  # type: ignore[no-untyped-def]
            hh = people.register_household(s, actor, grid_id=grid_id, household_no=no, address=addr, phone=phone,
                                           members=members)
            return hh.id, [r.id for r in hh.residents]

        self.runner.run(job, mode="write", on_done=self._done, on_error=self._failed, label="register-household")

    def _done(self, result: tuple[int, list[int]]) -> None:
        hid, rids = result
        self.household_id = hid
        self.message.setText("")
        self.registered.emit(hid)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.message.setText("")
        self.validate()
        show_error(self, exc)


class HouseholdDialog(QDialog):
    """A household and its members (read-only); double-click a member to open the resident."""

    open_resident = Signal(int)

    def __init__(self, runner: OpRunner, actor: Actor, household_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor, self.household_id = runner, actor, household_id
        self.setWindowTitle(tr("户信息"))
        self.setMinimumSize(720, 380)
        lay = QVBoxLayout(self)
        self.header = QLabel()
        self.header.setWordWrap(True)
        lay.addWidget(self.header)
        self.members = QTableWidget(0, 6)
        self.members.setHorizontalHeaderLabels([tr("姓名"), tr("性别"), tr("身份证号"), tr("出生日期"),
                                                tr("与户主关系"), tr("人口类型")])
        self.members.horizontalHeader().setStretchLastSection(True)
        self.members.verticalHeader().setVisible(False)
        self.members.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.members.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.members.cellDoubleClicked.connect(self._open)
        lay.addWidget(self.members)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.button(QDialogButtonBox.StandardButton.Close).setText(tr("关闭"))
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.view: registers.HouseholdView | None = None
        self.reload()

    def reload(self) -> None:
        actor, hid = self.actor, self.household_id
        self.runner.run(lambda s, _t: registers.household_view(s, actor, hid), on_done=self._loaded,
                        on_error=lambda e: show_error(self, e), label="household")

    def _loaded(self, v: registers.HouseholdView) -> None:
        self.view = v
        self.setWindowTitle(tr("户信息 — {no}").format(no=v.household_no))
        self.header.setText(tr("户号：{no}　　网格：{grid}\n地址：{addr}　　电话：{phone}").format(
            no=v.household_no, grid=v.grid_name, addr=v.address or "", phone=v.phone or ""))
        lang = language()
        self.members.setRowCount(len(v.members))
        for i, m in enumerate(v.members):
            cells = (m.name, enums.label(m.sex, lang, enums.Sex) if m.sex else "", m.citizen_id or "",
                     m.birth_date.isoformat() if m.birth_date else "",
                     enums.label(m.relation_to_head, lang, enums.Relation) if m.relation_to_head else "",
                     enums.label(m.population_type, lang, enums.PopulationType))
            for j, t in enumerate(cells):
                self.members.setItem(i, j, QTableWidgetItem(t))
        self.members.resizeColumnsToContents()

    def _open(self, row: int, _col: int) -> None:
        if self.view is not None:
            self.open_resident.emit(self.view.members[row].id)
