"""Stage 1 of the census import, reading the file: it is sniffed (zip/OLE/CSV), checked for what
would hurt (encryption, a corrupted zip, a zip bomb: sizes from the zip directory before anything is
inflated, a sheet whose rows reach Excel's 1,048,576-row limit) and read with python-calamine
(≈7× faster than openpyxl's read-only mode); ``.xls``/``.ods`` come through calamine too, ``.csv``
through the csv module (UTF-8 or GB18030).

Formula cells are read as the values Excel saved with them (never evaluated); where they are is
kept (:attr:`SheetData.formulas`) so the import can warn. A sheet's ``<dimension>`` is not
trusted (exporters claim the whole sheet): the rows are counted from the data.

Threading: any one thread; the loader parses a sheet on a helper thread while it scans the XML.
"""

from __future__ import annotations

import csv
import io
import re
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from gridman.core import tasks
from gridman.core.services.census.records import (
    EXCEL_MAX_ROWS,
    HEADER_SCAN_ROWS,
    MAX_DATA_ROWS,
    MAX_RATIO,
    MAX_UNCOMPRESSED,
    file_error,
)
from gridman.core.services.errors import NotFound
from gridman.core.tasks import TaskState

_FORMULA = re.compile(rb'<c r="([A-Z]+)([0-9]+)"[^>]*>(?:<v>[^<]*</v>|<v/>|<v />)?<f[ >/]')
_ROW = re.compile(rb'<row r="([0-9]+)"')


@dataclass
class SheetData:
    name: str
    rows: list[list[Any]]  # from Excel row 1
    formulas: dict[int, set[int]] = field(default_factory=dict)  # column index → Excel rows of formula cells


def _col_index(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n - 1


def _ole_is_encrypted(head: bytes, path: Path) -> bool:
    data = path.read_bytes() if path.stat().st_size < 50_000_000 else head
    return "EncryptedPackage".encode("utf-16-le") in data or b"EncryptedPackage" in data


def _zip_sheet_paths(zf: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name → member path, from xl/workbook.xml and its relationships."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
          "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
          "p": "http://schemas.openxmlformats.org/package/2006/relationships"}
    try:
        wb = ElementTree.fromstring(zf.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError):
        return {}
    targets = {r.get("Id"): r.get("Target", "") for r in rels.findall("p:Relationship", ns)}
    out: dict[str, str] = {}
    for sh in wb.iter(f"{{{ns['m']}}}sheet"):
        rid = sh.get(f"{{{ns['r']}}}id")
        t = targets.get(rid, "")
        if not t:
            continue
        t = t.lstrip("/")
        out[sh.get("name", "")] = t if t.startswith("xl/") else "xl/" + t
    return out


def _scan_sheet_xml(zf: zipfile.ZipFile, member: str) -> tuple[int, dict[int, set[int]]]:
    """Stream a worksheet's XML (never all in memory): the last row number and the formula cells
    (column index → Excel rows)."""
    last_row = 0
    formulas: dict[int, set[int]] = {}
    tail = b""
    with zf.open(member) as fh:
        while True:
            chunk = fh.read(1 << 20)
            if not chunk:
                break
            buf = tail + chunk
            if b"<f" in buf:  # one search (the regex confirms): 131 MB for 100,000 rows
                for m in _FORMULA.finditer(buf):
                    formulas.setdefault(_col_index(m.group(1)), set()).add(int(m.group(2)))
            k = buf.rfind(b"<row r=")
            if k >= 0:
                row_m = _ROW.match(buf, k)
                if row_m:
                    last_row = max(last_row, int(row_m.group(1)))
            tail = buf[-400:]
    return last_row, formulas


def _check_zip(path: Path) -> dict[str, str]:
    """Directory checks (bomb, not a workbook): sheet → zip member of its XML."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise file_error(f"文件“{path.name}”已损坏（不是完整的 Excel 文件），请重新保存或索取原件",
                          f"{path.name} is a corrupted workbook (bad zip)") from None
    with zf:
        infos = zf.infolist()
        total = sum(i.file_size for i in infos)
        if total > MAX_UNCOMPRESSED:
            raise file_error(f"文件“{path.name}”解压后超过 {MAX_UNCOMPRESSED // 1_000_000} MB，拒绝读取（可能是压缩炸弹）",
                              f"{path.name} inflates to {total} bytes; refused (zip bomb?)")
        for i in infos:
            if i.file_size > 10_000_000 and i.file_size > MAX_RATIO * max(i.compress_size, 1):
                raise file_error(
                    f"文件“{path.name}”中的 {i.filename} 压缩比异常（{i.file_size // max(i.compress_size, 1)}:1），"
                    "拒绝读取（可能是压缩炸弹）",
                    f"{path.name}: member {i.filename} has a suspicious compression ratio; refused (zip bomb?)")
        names = {i.filename for i in infos}
        if "xl/workbook.xml" not in names:
            if "content.xml" in names:  # OpenDocument
                return {}
            raise file_error(f"文件“{path.name}”不是 Excel 工作簿", f"{path.name} is not an Excel workbook")
        return {sheet: member for sheet, member in _zip_sheet_paths(zf).items() if member in names}


def _scan_member(path: Path, member: str) -> tuple[int, dict[int, set[int]]]:
    """(last row, formula cells) of a worksheet's XML, streamed. Its ``<dimension>`` is not read:
    exporters claim the whole sheet (A1:XFD1048576) for a few rows, and calamine does not
    allocate by it either."""
    with zipfile.ZipFile(path) as zf:
        try:
            return _scan_sheet_xml(zf, member)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise file_error(f"文件“{path.name}”已损坏，请重新保存或索取原件", f"{path.name} is corrupted") from exc
        except Exception as exc:  # zlib.error, CRC errors
            if exc.__class__.__name__ in ("error", "BadZipFile"):
                raise file_error(f"文件“{path.name}”已损坏，请重新保存或索取原件", f"{path.name} is corrupted") from exc
            raise


def _check_rows(path: Path, sheet: str, last_row: int) -> None:
    if last_row >= EXCEL_MAX_ROWS:
        raise file_error(
            f"工作表“{sheet}”用到了 Excel 的最后一行（第 {EXCEL_MAX_ROWS:,} 行）：数据可能被截断，或整列带有内容/格式。"
            "请删除多余的行，超过 50 万行的数据请拆分成多个文件",
            f"Sheet {sheet!r} reaches Excel's last row ({EXCEL_MAX_ROWS:,}): data may be truncated or whole "
            "columns are filled; remove the extra rows and split files over 500,000 rows")
    if last_row > MAX_DATA_ROWS + HEADER_SCAN_ROWS:
        raise file_error(f"工作表“{sheet}”有 {last_row:,} 行，超过单次导入上限 {MAX_DATA_ROWS:,} 行，请拆分文件",
                          f"Sheet {sheet!r} has {last_row:,} rows, over the {MAX_DATA_ROWS:,} limit; split it")


def _read_csv(path: Path) -> list[SheetData]:
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise file_error(f"无法识别“{path.name}”的文字编码（应为 UTF-8 或 GBK）",
                          f"Cannot decode {path.name} (UTF-8 or GBK expected)")
    if "\x00" in text[:4096]:
        raise file_error(f"文件“{path.name}”不是表格文件", f"{path.name} is not a spreadsheet")
    rows = [list(r) for r in csv.reader(io.StringIO(text))]
    if len(rows) > MAX_DATA_ROWS + HEADER_SCAN_ROWS:
        raise file_error(f"“{path.name}”有 {len(rows):,} 行，超过单次导入上限，请拆分文件",
                          f"{path.name} has {len(rows):,} rows, over the limit; split it")
    return [SheetData(path.stem, rows)]


def read_workbook(path: Path, *, task: TaskState | None = None) -> tuple[list[str], Callable[[str], SheetData]]:
    """Check the file and return (visible sheet names, loader of one sheet). Raises ImportFileError."""
    task = tasks.ensure(task)
    if not path.exists():
        raise NotFound(f"文件“{path}”不存在", en=f"No such file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise file_error(f"文件“{path.name}”是空的", f"{path.name} is empty")
    with path.open("rb") as fh:
        head = fh.read(8)
    suffix = path.suffix.lower()
    members: dict[str, str] = {}
    if head.startswith(b"PK\x03\x04"):
        members = _check_zip(path)
    elif head.startswith(b"\xd0\xcf\x11\xe0"):
        if _ole_is_encrypted(head, path):
            raise file_error(f"文件“{path.name}”设置了打开密码（已加密），请在 Excel 中取消密码后另存再导入",
                              f"{path.name} is password-protected (encrypted); remove the password and save again")
    elif suffix in (".csv", ".txt"):
        sd = _read_csv(path)
        return [sd[0].name], lambda _name: sd[0]
    else:
        raise file_error(f"文件“{path.name}”不是 Excel 工作簿（支持 .xlsx/.xlsm/.xls/.ods/.csv）",
                          f"{path.name} is not a workbook (.xlsx/.xlsm/.xls/.ods/.csv)")
    task.progress(0.02, "读取工作簿")
    import python_calamine as pc

    try:
        wb = pc.CalamineWorkbook.from_path(str(path))
    except pc.PasswordError:
        raise file_error(f"文件“{path.name}”设置了密码，请取消密码后再导入",
                          f"{path.name} is password-protected") from None
    except Exception as exc:  # calamine raises several error types for broken files
        raise file_error(f"文件“{path.name}”无法读取（已损坏或不是工作簿）",
                         f"{path.name} cannot be read (corrupted or not a workbook)") from exc
    names = [m.name for m in wb.sheets_metadata
             if str(m.visible).endswith("Visible") and str(m.typ).endswith("WorkSheet")]

    def parse(name: str) -> Any:
        """calamine's parse of the sheet (it releases the GIL while it works)."""
        try:
            sh = wb.get_sheet_by_name(name)
        except Exception as exc:
            raise file_error(f"工作表“{name}”无法读取（已损坏）", f"Sheet {name!r} cannot be read (corrupted)") from exc
        if sh.end and sh.end[0] + 1 >= EXCEL_MAX_ROWS:
            _check_rows(path, name, sh.end[0] + 1)
        return sh

    def load(name: str) -> SheetData:
        member = members.get(name)
        formulas: dict[int, set[int]] = {}
        if member is None:  # .xls/.ods: no XML to scan
            sh = parse(name)
        else:
            # calamine parses on a helper thread while this one streams the same XML for the
            # last row and formula cells (the checks below): the two overlap on two cores
            got: dict[str, Any] = {}

            def run() -> None:
                try:
                    got["sheet"] = parse(name)
                except BaseException as exc:  # raised below, in the caller's thread
                    got["error"] = exc

            th = threading.Thread(target=run, name="census-read", daemon=True)
            th.start()
            try:
                last_row, formulas = _scan_member(path, member)
                import numpy  # noqa: F401 — the ID check needs it next; loaded while calamine still parses
            finally:
                th.join()
            _check_rows(path, name, last_row)
            if "error" in got:
                raise got["error"]
            sh = got["sheet"]
        try:
            rows = sh.to_python(skip_empty_area=False)
        except Exception as exc:
            raise file_error(f"工作表“{name}”无法读取（已损坏）", f"Sheet {name!r} cannot be read (corrupted)") from exc
        _check_rows(path, name, len(rows))
        return SheetData(name, rows, formulas)

    return names, load

