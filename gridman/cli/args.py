"""The command line's argument types, built once: every command module takes its numbers, ids,
dates, months and JSON files through these, so a bad value is refused while the arguments are
parsed — with a message in the user's language naming the argument, what is wrong and what to
write instead, exit code 2 — and never reaches a service or the database.

Bounds: an id or a count fits a 64-bit integer (PostgreSQL ``BIGINT``, SQLite ``INTEGER``);
dates and times lie within :data:`FIRST_YEAR` … :data:`LAST_YEAR` (a deadline computed from
9999-12-31 overflows Python's ``datetime``; no register holds dates outside that range).

:class:`Parser` is the parser class of the whole command line (sub-parsers inherit it): its
errors print ``错误：…`` (or ``error: …`` with ``--lang en``) after the usage line.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")
R = TypeVar("R")
D = TypeVar("D", date, datetime)

INT_MAX = 2**63 - 1  # the largest id or count the databases hold
FIRST_YEAR = 1900
LAST_YEAR = 2999
FLOAT_MAX = 1e12
JSON_MAX_BYTES = 10 * 1024 * 1024

_lang: ContextVar[str] = ContextVar("gridman_cli_lang", default="zh_CN")


def is_en() -> bool:
    return _lang.get().startswith("en")


class BadArgument(argparse.ArgumentTypeError):
    """A refused argument value; its text follows the language of the command line being parsed."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(zh)
        self.zh, self.en = zh, en

    def __str__(self) -> str:
        return self.en if is_en() else self.zh


def _lang_of(argv: Sequence[str]) -> str:
    for i, a in enumerate(argv):
        if a == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--lang="):
            return a.split("=", 1)[1]
    return "zh_CN"


@contextmanager
def language_of(argv: Sequence[str]) -> Iterator[None]:
    token = _lang.set(_lang_of(argv))
    try:
        yield
    finally:
        _lang.reset(token)


class Parser(argparse.ArgumentParser):
    """The parser of ``gridman`` and (inherited) of every sub-command."""

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        with language_of(argv):
            return super().parse_args(argv, namespace)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, ("error: " + message if is_en() else "错误：" + _zh(message)) + "\n")


# argparse's own messages (English only) and what a Chinese user reads instead
_ARGPARSE_ZH = [
    (re.compile(r"^the following arguments are required: (.*)$"), "缺少必需的参数：{0}"),
    (re.compile(r"^unrecognized arguments: (.*)$"), "无法识别的参数：{0}（用 -h 查看用法）"),
    (re.compile(r"^argument (\S+): invalid choice: (.*) \(choose from (.*)\)$"), "参数 {0}：无效的选项 {1}（可选：{2}）"),
    (re.compile(r"^argument (\S+): expected one argument$"), "参数 {0} 需要一个值"),
    (re.compile(r"^argument (\S+): expected (\d+) arguments$"), "参数 {0} 需要 {1} 个值"),
    (re.compile(r"^argument (\S+): not allowed with argument (\S+)$"), "参数 {0} 不能与 {1} 同时使用"),
    (re.compile(r"^one of the arguments (.*) is required$"), "必须给出以下参数之一：{0}"),
    (re.compile(r"^argument (\S+): (.*)$", re.S), "参数 {0}：{1}"),
]


def _zh(message: str) -> str:
    for pattern, zh in _ARGPARSE_ZH:
        m = pattern.match(message)
        if m:
            return zh.format(*m.groups())
    return message


# --- numbers ------------------------------------------------------------------------------------


def _integer(text: str, lo: int, hi: int, zh_what: str, en_what: str) -> int:
    s = text.strip()
    if not s or not s.lstrip("+-").isdigit() or not s.isascii():
        raise BadArgument(f"“{text}”不是{zh_what}：请写一个整数（{lo}–{hi}）",
                          f"{text!r} is not {en_what}: write a whole number ({lo}–{hi})")
    if len(s) > 25 or not lo <= int(s) <= hi:
        raise BadArgument(f"{zh_what}“{text}”超出范围：应在 {lo} 到 {hi} 之间",
                          f"{text!r} is out of range: it must lie between {lo} and {hi}")
    return int(s)


def row_id(text: str) -> int:
    """A row id (an incident, a batch, a resident…): 1 … 2^63−1."""
    return _integer(text, 1, INT_MAX, "编号", "an id")


def count(lo: int = 0, hi: int = INT_MAX) -> Callable[[str], int]:
    """A whole number within ``lo`` … ``hi`` (limits, offsets, days, seeds)."""
    def parse(text: str) -> int:
        return _integer(text, lo, hi, "数量", "a number")
    parse.__name__ = "count"
    return parse


def number(lo: float = -FLOAT_MAX, hi: float = FLOAT_MAX) -> Callable[[str], float]:
    """A finite decimal number within ``lo`` … ``hi`` (radii, areas, coordinates)."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise BadArgument(f"“{text}”不是数字：请写如 100 或 0.5 的数", f"{text!r} is not a number: write e.g. 100 or 0.5") \
                from None
        if not math.isfinite(v) or not lo <= v <= hi:
            raise BadArgument(f"数值“{text}”超出范围：应在 {lo:g} 到 {hi:g} 之间",
                              f"{text!r} is out of range: it must lie between {lo:g} and {hi:g}")
        return v
    parse.__name__ = "number"
    return parse


def ids(words: Sequence[str]) -> list[int]:
    """Several ids given as words (``act accept 12 13``)."""
    return [row_id(w) for w in words]


# --- dates --------------------------------------------------------------------------------------


def _year_ok(text: str, year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise BadArgument(f"“{text}”的年份超出范围：应在 {FIRST_YEAR} 到 {LAST_YEAR} 年之间",
                          f"{text!r}: the year must lie between {FIRST_YEAR} and {LAST_YEAR}")


def _when(text: str, parse: Callable[[str], D], zh: str, en: str) -> D:
    """``parse(text)`` within the sane years; a refusal says what to write (``zh``/``en``)."""
    try:
        d = parse(text.strip())
    except ValueError:
        raise BadArgument(f"“{text}”{zh}", f"{text!r} {en}") from None
    _year_ok(text, d.year)
    return d


def iso_date(text: str) -> date:
    """A date ``YYYY-MM-DD`` within the sane years."""
    return _when(text, date.fromisoformat, "不是日期：请写 YYYY-MM-DD，如 2026-11-01",
                 "is not a date: write YYYY-MM-DD, e.g. 2026-11-01")


def iso_datetime(text: str) -> datetime:
    """A date-time (ISO: ``2026-11-01T09:00`` or a date) within the sane years, as local wall-clock
    time without a time zone (what gridman keeps)."""
    d = _when(text, datetime.fromisoformat, "不是时间：请写 ISO 格式，如 2026-11-01T09:00",
              "is not a date-time: write ISO, e.g. 2026-11-01T09:00")
    return d if d.tzinfo is None else d.astimezone().replace(tzinfo=None)


def month(text: str) -> str:
    """A month ``YYYY-MM`` within the sane years (returned normalised, e.g. ``2026-03``)."""
    s = text.strip()
    parts = s.split("-")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() for p in parts) or len(parts[0]) != 4 \
            or not 1 <= int(parts[1]) <= 12:
        raise BadArgument(f"“{text}”不是月份：请写 YYYY-MM，如 2026-11", f"{text!r} is not a month: write YYYY-MM, e.g. 2026-11")
    _year_ok(text, int(parts[0]))
    return f"{int(parts[0]):04d}-{int(parts[1]):02d}"


# --- files --------------------------------------------------------------------------------------


def input_file(text: str) -> Path:
    """An existing, readable regular file."""
    p = Path(text)
    if not text.strip():
        raise BadArgument("文件名为空：请给出文件路径", "The file name is empty: give a file path")
    if p.is_dir():
        raise BadArgument(f"“{text}”是文件夹，不是文件：请给出文件路径", f"{text!r} is a folder, not a file: give a file path")
    if not p.is_file():
        raise BadArgument(f"找不到文件“{text}”：请检查路径", f"File {text!r} not found: check the path")
    try:
        with p.open("rb"):
            pass
    except OSError:
        raise BadArgument(f"无法读取文件“{text}”：请检查文件权限", f"Cannot read {text!r}: check its permissions") from None
    return p


def output_file(text: str) -> str:
    """A file to write: a name, not a folder, in a folder (or a place a folder can be made)."""
    p = Path(text)
    if not text.strip():
        raise BadArgument("输出文件名为空：请给出要写入的文件路径", "The output file name is empty: give the file to write")
    if p.is_dir():
        raise BadArgument(f"“{text}”是文件夹：请给出要写入的文件名（文件夹加文件名）",
                          f"{text!r} is a folder: give the name of the file to write (the folder plus a file name)")
    for parent in p.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise BadArgument(f"无法写入“{text}”：“{parent}”是文件而不是文件夹",
                                  f"Cannot write {text!r}: {parent} is a file, not a folder")
            break
    return text


def database_output(text: str) -> str:
    """A new database: a file (as :func:`output_file`) or a database URL."""
    return text if "://" in text else output_file(text)


def json_file(text: str) -> Any:
    """The JSON value held in an existing file (UTF-8, at most :data:`JSON_MAX_BYTES`)."""
    p = input_file(text)
    if p.stat().st_size > JSON_MAX_BYTES:
        raise BadArgument(f"文件“{text}”太大，不是选择文件", f"{text!r} is too large for a JSON choices file")
    try:
        return json.loads(p.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        where = f"（第 {exc.lineno} 行第 {exc.colno} 列）" if isinstance(exc, json.JSONDecodeError) else ""
        en_where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise BadArgument(f"文件“{text}”不是有效的 JSON{where}：请检查文件内容（UTF-8 编码的 JSON）",
                          f"{text!r} is not valid JSON{en_where}: check the file (UTF-8 JSON)") from None


def json_object_file(text: str) -> dict[str, Any]:
    """A JSON file holding an object ``{…}``."""
    v = json_file(text)
    if not isinstance(v, dict):
        raise BadArgument(f"文件“{text}”应是 JSON 对象 {{…}}，而不是 {type(v).__name__}",
                          f"{text!r} must hold a JSON object {{…}}, not {type(v).__name__}")
    return v


def search_text(text: str) -> str:
    """Text to search for, without control characters (PostgreSQL refuses NUL in a query)."""
    from gridman.core.text_rules import clean

    return clean(text)


def checked(parse: Callable[[T], R], value: T, *, field: str) -> R:
    """``parse(value)`` for a value read after parsing: a refusal becomes the same message as a
    :class:`~gridman.core.errors.ValidationError` (exit 2)."""
    from gridman.core.errors import ValidationError

    try:
        return parse(value)
    except BadArgument as exc:
        raise ValidationError(exc.zh, field=field, en=exc.en) from None


def non_empty(text: str) -> str:
    """A text that is not blank (codes, names, titles)."""
    if not text.strip():
        raise BadArgument("值为空：请给出内容", "The value is empty: give one")
    return text
