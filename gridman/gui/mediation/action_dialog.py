"""The inputs of one mediation action, asked in a dialog built from the action's declaration
(``mediation.action_spec``): which fields, their labels, their choices and which are required
all come from the service; the dialog checks them with the service's own ``rules.clean``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gridman.core import enums
from gridman.core.services import mediation
from gridman.core.services.errors import ValidationError
from gridman.core.services.mediation import Input, Kind, rules
from gridman.core.services.mediation import queue as mediation_queue
from gridman.core.services.permissions import Actor
from gridman.gui.i18n import language, pick, tr
from gridman.gui.mediation.widgets import action_text, ok_cancel
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTextEdit,
    QWidget,
)


class ActionDialog(QDialog):
    """One field per declared input of ``action`` (a level move's target is fixed by the rule and
    not asked). ``widgets`` maps each input's key to its widget; ``values()`` are the keyword
    arguments of the service function. ``category`` is the case's (None for several cases)."""

    def __init__(self, action: str, *, runner: OpRunner, actor: Actor, incident_ids: list[int],
                 category: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = mediation.action_spec(action)
        self.action = self.spec.action.value
        self.runner, self.actor, self.incident_ids, self.category = runner, actor, list(incident_ids), category
        self.setObjectName(f"action_{self.action}")
        self.setWindowTitle(action_text(self.action))
        self.setMinimumWidth(460)
        form = QFormLayout(self)
        self.widgets: dict[str, QWidget] = {}
        self.files: list[str] = []
        for inp in self.spec.inputs:
            w = self._widget(inp)
            if w is None:
                continue
            self.widgets[inp.key] = w
            text = pick(inp.zh, inp.en) + (" *" if inp.needed(category) else "")
            form.addRow("" if inp.kind == Kind.FLAG else text, self._row(inp, w))
        self.message = QLabel()
        self.message.setStyleSheet("color: #b00020;")
        self.message.setWordWrap(True)
        form.addRow(self.message)
        self.buttons = ok_cancel(tr("确定"))
        self.buttons.accepted.connect(self._ok)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)

    # --- building ------------------------------------------------------------------------------

    def _widget(self, inp: Input) -> QWidget | None:
        if inp.kind == Kind.TEXT:
            w = QTextEdit()
            w.setFixedHeight(80)
            return w
        if inp.kind == Kind.LINE:
            return QLineEdit()
        if inp.kind == Kind.CHOICE:
            cb = QComboBox()
            for c in inp.choices():
                cb.addItem(pick(c.zh, c.en), c.value)
            if inp.default is not None:
                cb.setCurrentIndex(max(cb.findData(inp.default), 0))
            return cb
        if inp.kind == Kind.FLAG:
            return QCheckBox(pick(inp.zh, inp.en))
        if inp.kind == Kind.USER:
            return self._handlers()
        if inp.kind == Kind.CASE:
            return self._merge_targets()
        if inp.kind == Kind.FILES:
            self.files_label = QLabel(tr("未选择文件"))
            pick_button = QPushButton(tr("选择文件…"))
            pick_button.clicked.connect(self._pick_files)
            return pick_button
        return None  # Kind.LEVEL: the rule fixes where a case moves

    def _row(self, inp: Input, w: QWidget) -> QWidget | QHBoxLayout:
        if inp.kind != Kind.FILES:
            return w
        row = QHBoxLayout()
        row.addWidget(w)
        row.addWidget(self.files_label, 1)
        return row

    def _handlers(self) -> QComboBox:
        cb = QComboBox()
        cb.setObjectName("assignHandler")
        actor, ids = self.actor, self.incident_ids

        def candidates(s, _t):  # type: ignore[no-untyped-def]
            return mediation.handler_candidates(s, actor, ids)

        self.runner.run(candidates, on_done=self._handlers_loaded, label="assign-candidates")
        return cb

    def _handlers_loaded(self, rows: list[tuple[int, str, str]]) -> None:
        cb = self.widgets.get("handler_id")
        if not isinstance(cb, QComboBox):
            return
        for uid, name, role in rows:
            cb.addItem(f"{name}（{enums.label(role, language(), enums.Role)}）", uid)
        if not rows:
            self.message.setText(tr("没有可以办理这些案件的人员（所选案件须在同一层级）"))

    def _merge_targets(self) -> QComboBox:
        cb = QComboBox()
        cb.setObjectName("mergeTarget")
        actor = self.actor

        def job(s, _t):  # type: ignore[no-untyped-def]
            return mediation_queue.queue(s, actor, None, limit=200, with_counts=False, with_total=False).rows

        self.runner.run(job, on_done=self._targets_loaded, label="merge-targets")
        return cb

    def _targets_loaded(self, rows: list[mediation_queue.QueueRow]) -> None:
        cb = self.widgets.get("into_id")
        if not isinstance(cb, QComboBox):
            return
        for r in rows:
            if r.id not in self.incident_ids:
                cb.addItem(f"#{r.id} {r.title}（{r.grid_name}）", r.id)

    def _pick_files(self) -> None:
        fns, _ = QFileDialog.getOpenFileNames(self, tr("选择附件"), "", tr("图片和文件 (*.jpg *.jpeg *.png *.pdf *.*)"))
        if fns:
            self.set_files(fns)

    def set_files(self, files: list[str]) -> None:
        self.files = list(files)
        self.files_label.setText("、".join(Path(f).name for f in files))

    # --- reading -------------------------------------------------------------------------------

    def _raw(self, key: str) -> Any:
        w = self.widgets[key]
        if isinstance(w, QTextEdit):
            return w.toPlainText()
        if isinstance(w, QLineEdit):
            return w.text()
        if isinstance(w, QComboBox):
            return w.currentData()
        if isinstance(w, QCheckBox):
            return w.isChecked()
        return list(self.files)  # the file picker

    def _ok(self) -> None:
        """Check every field as the service will (its messages, its labels) before closing."""
        for inp in self.spec.inputs:
            if inp.key in self.widgets:
                try:
                    rules.clean(inp, self._raw(inp.key), category=self.category)
                except ValidationError as exc:
                    self.message.setText(exc.text(language()))
                    return
        self.accept()

    def values(self) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        for key in self.widgets:
            v = self._raw(key)
            if key == "files":
                v = mediation.file_inputs(v)
            elif isinstance(v, str):
                v = v.strip() or None
            kw[key] = v
        return kw
