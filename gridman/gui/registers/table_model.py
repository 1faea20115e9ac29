"""A lazily fetched table model over one register (services.registers).

The model keeps only the rows fetched so far (pages of ``PAGE_SIZE``); ``canFetchMore`` /
``fetchMore`` ask the op runner for the next page in the background, so scrolling never blocks
the GUI thread and a city register is never loaded whole. Sorting (``sort``) and filtering
(``set_filters``) are done in SQL by re-querying from the first page. A refresh that is
overtaken by a newer one is dropped (generation counter).

After a write, :meth:`RegisterModel.apply_changes` refreshes only what changed (calibre's
``refresh_ids``): updated rows are re-fetched by id and replaced in place (``dataChanged``); rows
inserted or deleted, or rows that no longer match the filters, re-query the rows loaded so far in
one go, announced by ``about_to_reload`` / ``reloaded`` so the view keeps its scroll position and
its selection by id.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from gridman.core import enums
from gridman.core.changes import Changes
from gridman.core.services import registers
from gridman.core.services.permissions import Actor
from gridman.gui.i18n import language, pick, tr
from gridman.gui.interests import REGISTER_RELATED, register_table
from gridman.gui.ops import OpRunner
from gridman.gui.qt import QAbstractTableModel, QBrush, QColor, QModelIndex, Qt, Signal

ID_ROLE = Qt.ItemDataRole.UserRole + 1


def hours_text(h: float | None) -> str:
    if h is None:
        return ""
    over = h < 0
    h = abs(h)
    days, hours = int(h // 24), int(h % 24)
    if days >= 3:
        span = tr("{d}天").format(d=days)
    elif days:
        span = tr("{d}天{h}小时").format(d=days, h=hours)
    else:
        span = tr("{h}小时").format(h=hours)
    return (tr("超期 {span}") if over else tr("剩 {span}")).format(span=span)


def time_left_colour(h: float | None) -> QColor | None:
    if h is None:
        return None
    if h < 0:
        return QColor("#f8c9c4")  # overdue: red
    if h < 24:
        return QColor("#fde2b8")  # due within a day: orange
    if h < 72:
        return QColor("#fdf3c4")  # within three days: yellow
    return QColor("#d9f2dc")  # comfortable: green


class RegisterModel(QAbstractTableModel):
    loaded = Signal()  # first page (re)loaded
    fetched = Signal(int)  # a further page arrived (rows added)
    counted = Signal(int)  # total matching rows (computed in the background)
    failed = Signal(object)
    about_to_reload = Signal()  # the loaded rows are about to be replaced, keeping the position
    reloaded = Signal()  # … and were (the view restores scroll and selection)

    def __init__(self, runner: OpRunner, actor: Actor, kind: str, *, page_size: int = registers.PAGE_SIZE,
                 parent: Any = None) -> None:
        super().__init__(parent)
        self.runner, self.actor, self.kind, self.page_size = runner, actor, kind, page_size
        self.columns = registers.COLUMNS[kind]
        self.filters = registers.Filters()
        self.sort_key: str | None = None
        self.descending = False
        self.ids: list[int] = []
        self.rows: list[tuple[Any, ...]] = []
        self.extra: list[dict[str, Any]] = []
        self.total: int | None = None
        self._more = False
        self._fetching = False
        self._generation = 0
        self._refreshing = 0  # in-place refreshes under way
        self._enum_cache = {c.key: getattr(enums, c.enum) for c in self.columns if c.enum}

    # --- loading --------------------------------------------------------------------------
    def set_filters(self, filters: registers.Filters) -> None:
        self.filters = filters
        self.refresh()

    def refresh(self, *, count: bool = True) -> None:
        """Re-query from the first page (after a filter/sort change or a broadcast change)."""
        self._generation += 1
        gen = self._generation
        self._fetching = True
        kind, actor, f, sk, desc, n = self.kind, self.actor, self.filters, self.sort_key, self.descending, self.page_size

        def job(s, _task):  # type: ignore[no-untyped-def]
            return registers.page(s, actor, kind, filters=f, sort=sk, descending=desc, offset=0, limit=n)

        self.runner.run(job, on_done=lambda p: self._first(gen, p), on_error=lambda e: self._error(gen, e),
                        label=f"{kind}:page0")
        if count:
            self.total = None
            self.runner.run(lambda s, _t: registers.count(s, actor, kind, filters=f),
                            on_done=lambda c: self._counted(gen, c), on_error=lambda e: None, label=f"{kind}:count")

    def _first(self, gen: int, p: registers.Page) -> None:
        if gen != self._generation:
            return
        self.beginResetModel()
        self.ids, self.rows, self.extra = list(p.ids), list(p.rows), list(p.extra)
        self._more = len(p.ids) >= self.page_size
        self._fetching = False
        self.endResetModel()
        self.loaded.emit()

    def _counted(self, gen: int, c: int) -> None:
        if gen == self._generation:
            self.total = c
            self.counted.emit(c)

    def _error(self, gen: int, exc: BaseException) -> None:
        if gen == self._generation:
            self._fetching = False
            self.failed.emit(exc)

    def canFetchMore(self, parent: QModelIndex = QModelIndex()) -> bool:  # noqa: B008, N802
        return not parent.isValid() and self._more and not self._fetching

    def fetchMore(self, parent: QModelIndex = QModelIndex()) -> None:  # noqa: B008, N802
        if parent.isValid() or not self._more or self._fetching:
            return
        self._fetching = True
        gen = self._generation
        kind, actor, f, sk, desc, n = self.kind, self.actor, self.filters, self.sort_key, self.descending, self.page_size
        offset = len(self.ids)

        def job(s, _task):  # type: ignore[no-untyped-def]
            return registers.page(s, actor, kind, filters=f, sort=sk, descending=desc, offset=offset, limit=n)

        self.runner.run(job, on_done=lambda p: self._more_rows(gen, p), on_error=lambda e: self._error(gen, e),
                        label=f"{kind}:page")

    def _more_rows(self, gen: int, p: registers.Page) -> None:
        if gen != self._generation:
            return
        self._fetching = False
        self._more = len(p.ids) >= self.page_size
        if p.ids:
            first = len(self.ids)
            self.beginInsertRows(QModelIndex(), first, first + len(p.ids) - 1)
            self.ids += p.ids
            self.rows += p.rows
            self.extra += p.extra
            self.endInsertRows()
        self.fetched.emit(len(p.ids))

    # --- refreshing what a write changed ----------------------------------------------------
    def apply_changes(self, ch: Changes) -> None:
        """Refresh the rows ``ch`` touched: in place when only known rows of this register were
        updated; otherwise re-query the rows loaded so far, keeping the position."""
        if not self._generation:
            return  # never loaded: the first load will show it
        table = register_table(self.kind)
        ids = ch.ids(table)
        if ch.everything or ids is None or ch.reshaped(table) or ch.touches(*REGISTER_RELATED.get(self.kind, ())):
            self.reload_keeping(count=ch.everything or ch.reshaped(table) or ids is None)
        elif ids:
            self.refresh_rows(ids)

    def refresh_rows(self, ids: set[int] | frozenset[int]) -> None:
        """Re-fetch the loaded rows ``ids`` and replace them in place; a row the filters no
        longer select (or scope no longer allows) makes it a reload keeping the position."""
        want = [i for i in self.ids if i in ids]
        if not want:
            return
        gen = self._generation
        self._refreshing += 1
        kind, actor, f = self.kind, self.actor, self.filters

        def job(s, _task):  # type: ignore[no-untyped-def]
            return registers.rows_by_id(s, actor, kind, want, filters=f)

        def failed(e: BaseException) -> None:
            self._refreshing -= 1
            self._error(gen, e)

        self.runner.run(job, on_done=lambda p: self._replace(gen, want, p), on_error=failed, label=f"{kind}:rows")

    def _replace(self, gen: int, want: list[int], p: registers.Page) -> None:
        self._refreshing -= 1
        if gen != self._generation:
            return
        got = dict(zip(p.ids, zip(p.rows, p.extra, strict=True), strict=True))
        if len(got) < len(want):
            self.reload_keeping(count=True)
            return
        pos = {rid: i for i, rid in enumerate(self.ids)}
        last = len(self.columns) - 1
        for rid, (row, extra) in got.items():
            i = pos.get(rid)
            if i is not None:
                self.rows[i], self.extra[i] = row, extra
                self.dataChanged.emit(self.index(i, 0), self.index(i, last))

    def reload_keeping(self, *, count: bool = False) -> None:
        """Re-query the rows loaded so far (at least one page) in one go and replace them,
        announced by ``about_to_reload`` / ``reloaded`` so the view keeps its place."""
        self._generation += 1
        gen = self._generation
        self._fetching = True
        kind, actor, f, sk, desc = self.kind, self.actor, self.filters, self.sort_key, self.descending
        n = max(self.page_size, -(-len(self.ids) // self.page_size) * self.page_size)

        def job(s, _task):  # type: ignore[no-untyped-def]
            return registers.page(s, actor, kind, filters=f, sort=sk, descending=desc, offset=0, limit=n)

        self.runner.run(job, on_done=lambda p: self._reloaded(gen, n, p), on_error=lambda e: self._error(gen, e),
                        label=f"{kind}:reload")
        if count:
            self.runner.run(lambda s, _t: registers.count(s, actor, kind, filters=f),
                            on_done=lambda c: self._counted(gen, c), on_error=lambda e: None, label=f"{kind}:count")

    def _reloaded(self, gen: int, n: int, p: registers.Page) -> None:
        if gen != self._generation:
            return
        self.about_to_reload.emit()
        self.beginResetModel()
        self.ids, self.rows, self.extra = list(p.ids), list(p.rows), list(p.extra)
        self._more = len(p.ids) >= n
        self._fetching = False
        self.endResetModel()
        self.reloaded.emit()

    @property
    def busy(self) -> bool:
        return self._fetching or self._refreshing > 0

    # --- Qt model interface ---------------------------------------------------------------
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            c = self.columns[section]
            return pick(c.zh, c.en)
        return None

    def display(self, row: int, col: int) -> str:
        v = self.rows[row][col]
        c = self.columns[col]
        if v is None:
            return ""
        if c.key == "time_left":
            return hours_text(v)
        if c.key == "tags" and language() == "en" and "tags" in self.extra[row]:
            return ", ".join(en for _zh, en in self.extra[row]["tags"])
        if c.key == "active":
            return tr("启用") if v else tr("停用")
        if c.enum:
            return enums.label(v, language(), self._enum_cache[c.key])
        if isinstance(v, datetime):
            return v.strftime("%Y-%m-%d %H:%M")
        if isinstance(v, date):
            return v.isoformat()
        return str(v)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        r, c = index.row(), index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self.display(r, c)
        if role == ID_ROLE:
            return self.ids[r]
        if role == Qt.ItemDataRole.TextAlignmentRole and isinstance(self.rows[r][c], (int, float)) \
                and not isinstance(self.rows[r][c], bool) and self.columns[c].key != "id":
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole and self.columns[c].key == "time_left":
            col = time_left_colour(self.rows[r][c])
            return QBrush(col) if col is not None else None
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort in SQL. Before the first load (a view enabling sorting) only remember the order."""
        key = self.columns[column].key if 0 <= column < len(self.columns) else None
        if key is not None and not registers.sortable(self.actor, self.kind, key):
            key = None  # a column the role sees masked keeps the default order
        desc = order == Qt.SortOrder.DescendingOrder
        if (key, desc) == (self.sort_key, self.descending):
            return
        self.sort_key, self.descending = key, desc
        if self._generation:
            self.refresh(count=False)

    def row_id(self, row: int) -> int:
        return self.ids[row]
