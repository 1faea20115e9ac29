"""Cell cleaners and validators for spreadsheet imports (census import, offline-exchange check-in).

Each cleaner takes a raw cell value as a spreadsheet reader returns it (``str``, ``float``,
``int``, ``bool``, ``date``/``datetime`` or ``None``/``""``) and returns a :class:`Clean`: either the
normalised value or an :class:`Issue` (machine code, Chinese message, English message). Nothing
here raises for bad data and nothing is ever guessed: an ID that Excel turned into a float is
reported as corrupted, an ambiguous date is reported, not "fixed".

Cleaners are pure functions (no database): the tag cleaner takes the tag table as a
:class:`TagIndex` the caller builds once from the DB. They are written to be cheap — the census
import calls them two million times for a 100,000-row file — so hot paths use dict caches.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from gridman.core import enums, fields, idcard

# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Issue:
    """Why a cell was refused (``severity`` "error") or accepted with a remark ("warning")."""

    code: str
    message: str  # Chinese, shown to the clerk
    en: str
    severity: str = "error"


class Clean(NamedTuple):
    """A cleaned cell: ``value`` (None when blank or refused) and the ``issue``, if any. A named
    tuple because the census import makes two million of these."""

    value: Any = None
    issue: Issue | None = None

    @property
    def ok(self) -> bool:
        return self.issue is None or self.issue.severity != "error"


EMPTY = Clean(None)


def _err(code: str, zh: str, en: str) -> Clean:
    return Clean(None, Issue(code, zh, en))


# --- text normalisation ------------------------------------------------------------------------


def to_halfwidth(s: str) -> str:
    """Full-width ASCII (０-９Ａ-Ｚ，（）) and the ideographic space → their ASCII forms (NFKC)."""
    return unicodedata.normalize("NFKC", s)


def is_blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def clean_text(raw: Any, *, max_len: int | None = None, field: str = "") -> Clean:
    """Strip a free-text cell; numbers that are whole become '12' not '12.0'."""
    if type(raw) is str:
        s = raw.strip()
        if not s:
            return EMPTY
        if "\u3000" in s:
            s = s.replace("\u3000", " ").strip()
    elif raw is None:
        return EMPTY
    elif isinstance(raw, float) and raw.is_integer():
        s = str(int(raw))
    elif isinstance(raw, datetime | date):
        s = raw.isoformat()
    else:
        s = str(raw).replace("\u3000", " ").strip()
        if not s:
            return EMPTY
    if max_len is not None and len(s) > max_len:
        return _err("too_long", f"内容过长（{len(s)} 字，最多 {max_len} 字）", f"Too long ({len(s)} > {max_len})")
    return Clean(s)


def clean_required_text(raw: Any, *, max_len: int | None = None, label_zh: str = "", label_en: str = "") -> Clean:
    if is_blank(raw):
        return _err("required", f"{label_zh}不能为空", f"{label_en or 'value'} is required")
    return clean_text(raw, max_len=max_len)


def clean_code(raw: Any, *, max_len: int = 40) -> Clean:
    """A code such as 户号 or a grid code: text, full-width folded, spaces removed, '123.0' → '123'."""
    if is_blank(raw):
        return EMPTY
    if isinstance(raw, float):
        if not raw.is_integer() or abs(raw) >= 1e15:
            return _err("code_number", "编码被 Excel 存成了数字，可能已失真，请把该列设为文本",
                        "The code was stored as a number by Excel and may be damaged; format the column as text")
        s = str(int(raw))
    else:
        s = "".join(to_halfwidth(str(raw)).split())
    if len(s) > max_len:
        return _err("too_long", f"编码过长（最多 {max_len} 位）", f"Code too long (max {max_len})")
    return Clean(s)


def _today() -> date:
    return date.today()


# --- citizen ID (公民身份号码) --------------------------------------------------------------------

_ID_DIGIT_OFFSET = 48 * sum(idcard.WEIGHTS)


def clean_citizen_id(raw: Any) -> Clean:
    """GB 11643 ID: full-width digits and a lower-case x are normalised; a float or a string in
    scientific notation is corrupted (Excel keeps 15 significant digits) and never repaired."""
    if type(raw) is str and len(raw) == 18 and raw.isascii() and raw[:17].isdigit():
        # fast path for the common, well-formed case (the import checks 100,000 of these)
        last = raw[17] if raw[17] != "x" else "X"
        total = sum(map(operator.mul, raw[:17].encode(), idcard.WEIGHTS)) - _ID_DIGIT_OFFSET  # bytes: b"0" is 48
        if idcard.CHECK_CHARS[total % 11] == last:
            try:
                born = date.fromisoformat(f"{raw[6:10]}-{raw[10:12]}-{raw[12:14]}")
            except ValueError:
                born = None
            if born is not None and born.year >= 1880 and born <= _today():
                return Clean(idcard.IdInfo(raw[:17] + last, raw[:6], born, "M" if int(raw[16]) % 2 else "F"))
    if is_blank(raw):
        return EMPTY
    try:
        if isinstance(raw, bool):
            raise idcard.IdCardError("invalid")
        info = idcard.parse(raw)
    except idcard.IdCardError as exc:
        return _err(f"id_{exc.code}", exc.zh, exc.en)
    note = info.note()
    if note is not None:  # converted from 15 digits: taken, with a remark
        return Clean(info, Issue("id_upgraded", note[0], note[1], "warning"))
    return Clean(info)


_CHECK_BYTES = None  # numpy array of CHECK_CHARS as bytes, made on first use
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def clean_citizen_ids(values: Sequence[Any]) -> list[Clean]:
    """:func:`clean_citizen_id` of many values at once — exactly the same results. The common,
    well-formed case (18 ASCII characters) is checked for all values together with numpy (digits,
    check character, birth date, not before 1880 nor in the future); every other value, and every
    one that fails a check, goes through :func:`clean_citizen_id`, which says what is wrong.
    Measured on 100,000 distinct IDs: 0.16 s against 0.63 s one by one."""
    import numpy as np

    global _CHECK_BYTES
    if _CHECK_BYTES is None:
        _CHECK_BYTES = np.frombuffer(idcard.CHECK_CHARS.encode(), np.uint8)
    out: list[Clean | None] = [None] * len(values)
    idx = [k for k, v in enumerate(values) if type(v) is str and len(v) == 18 and v.isascii()]
    if idx:
        arr = np.frombuffer("".join([values[k] for k in idx]).encode("ascii"), np.uint8).reshape(-1, 18)
        d = arr[:, :17].astype(np.int32) - 48
        ok = np.asarray(((d >= 0) & (d <= 9)).all(axis=1))
        d = np.where(ok[:, None], d, 0)
        last = arr[:, 17]
        last = np.where(last == ord("x"), ord("X"), last)
        ok &= _CHECK_BYTES[(d * np.array(idcard.WEIGHTS, np.int32)).sum(axis=1) % 11] == last
        y = d[:, 6] * 1000 + d[:, 7] * 100 + d[:, 8] * 10 + d[:, 9]
        m = d[:, 10] * 10 + d[:, 11]
        day = d[:, 12] * 10 + d[:, 13]
        leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
        dim = np.array(_DAYS_IN_MONTH, np.int32)[np.clip(m, 0, 12)] + ((m == 2) & leap)
        today = _today()
        ok &= (m >= 1) & (m <= 12) & (day >= 1) & (day <= dim) & (y >= 1880)
        ok &= y * 10000 + m * 100 + day <= today.year * 10000 + today.month * 100 + today.day
        odd = (d[:, 16] % 2) == 1
        for k, good, yy, mm, dd, male, x in zip(idx, ok.tolist(), y.tolist(), m.tolist(), day.tolist(),
                                                odd.tolist(), last.tolist(), strict=True):
            if good:
                raw = values[k]
                number = raw if x == 88 and raw[17] == "X" or x != 88 else raw[:17] + "X"  # 88: "X"
                out[k] = Clean(idcard.IdInfo(number, raw[:6], date(yy, mm, dd), "M" if male else "F"))
    return [c if c is not None else clean_citizen_id(v) for c, v in zip(out, values, strict=True)]


def with_many(one: Callable[[Any], Clean], many: Callable[[Sequence[Any]], list[Clean]]) -> Callable[[Any], Clean]:
    """Attach ``many``, the same cleaner for many values at once (same results, faster), to the
    cleaner ``one`` as ``one.many``: the census import calls it with a column's distinct values."""
    one.many = many  # type: ignore[attr-defined]
    return one


with_many(clean_citizen_id, clean_citizen_ids)


# --- dates -------------------------------------------------------------------------------------

EXCEL_EPOCH = date(1899, 12, 30)  # serial 1 = 1900-01-01 (Lotus leap-year bug accounted for)
_DATE_SEP = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[\sT].*)?$")
_DATE_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DATE_SERIAL = re.compile(r"^\d{4,5}(\.0+)?$")
_date_cache: dict[Any, Clean] = {}


def _bad_date(raw: Any) -> Clean:
    return _err("date", f"无法识别的日期“{raw}”（应为 1990-01-01 等格式）",
                f"Unrecognised date {raw!r} (expected e.g. 1990-01-01)")


def _from_serial(n: float) -> Clean:
    if not 1 <= n < 2958466:  # 9999-12-31
        return _err("date_range", f"日期序号 {n} 超出范围", f"Date serial {n} out of range")
    return Clean(EXCEL_EPOCH + timedelta(days=int(n)))


def _parse_date(raw: Any) -> Clean:
    if isinstance(raw, datetime):
        return Clean(raw.date())
    if isinstance(raw, date):
        return Clean(raw)
    if isinstance(raw, bool):
        return _bad_date(raw)
    if isinstance(raw, int | float):
        n = float(raw)
        if n.is_integer() and 19000101 <= n <= 29991231:  # 19900101 typed as a number
            return _parse_date(str(int(n)))
        if n.is_integer() or n > 0:
            return _from_serial(n)
        return _bad_date(raw)
    s = to_halfwidth(str(raw)).strip()
    m = _DATE_SEP.match(s) or _DATE_COMPACT.match(s)
    if m:
        try:
            return Clean(date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
        except ValueError:
            return _err("date_invalid", f"日期“{raw}”不存在", f"Date {raw!r} does not exist")
    if _DATE_SERIAL.match(s):
        return _from_serial(float(s))
    return _bad_date(raw)


_DATE_FAST = re.compile(r"([0-9]{4})[-/.年]([0-9]{1,2})[-/.月]([0-9]{1,2})日?")


def clean_dates(values: Sequence[Any], *, not_future: bool = False, today: date | None = None) -> list[Clean]:
    """:func:`clean_date` of many values at once — exactly the same results: the plain spellings
    (ASCII digits, nothing around: 1990-01-01, 1990/1/1, 1990.1.1, 1990年1月1日, 19900101) that
    give a plausible date are parsed directly; everything else goes through :func:`clean_date`.
    About 3× cheaper on a column of 70,000 distinct dates."""
    limit = today or date.today()
    match = _DATE_FAST.fullmatch
    out: list[Clean] = []
    for raw in values:
        if raw.__class__ is str:
            m = match(raw)
            if m is not None:
                y, mo, d = m.groups()
            elif len(raw) == 8 and raw.isdigit() and raw.isascii():
                y, mo, d = raw[:4], raw[4:6], raw[6:]
            else:
                y = None
            if y is not None:
                try:
                    v = date(int(y), int(mo), int(d))
                except ValueError:
                    v = None
                if v is not None and v.year >= 1880 and not (not_future and v > limit):
                    out.append(Clean(v))
                    continue
        out.append(clean_date(raw, not_future=not_future, today=today))
    return out


def clean_date(raw: Any, *, not_future: bool = False, today: date | None = None) -> Clean:
    """1990-01-01, 1990/1/1, 19900101, 1990年1月1日, 1990.1.1, Excel serial numbers, date cells."""
    if is_blank(raw):
        return EMPTY
    key = (type(raw), raw) if not isinstance(raw, datetime | date) else None
    c = _date_cache.get(key) if key is not None else None
    if c is None:
        c = _parse_date(raw)
        if key is not None and len(_date_cache) < 100_000:
            _date_cache[key] = c
    if c.ok and c.value is not None:
        if c.value.year < 1880:
            return _err("date_range", f"日期 {c.value} 不合理", f"Implausible date {c.value}")
        if not_future and c.value > (today or date.today()):
            return _err("date_future", f"日期 {c.value} 晚于今天", f"Date {c.value} is in the future")
    return c


with_many(clean_date, clean_dates)


# --- phone numbers -----------------------------------------------------------------------------

# THE phone rule: a mobile number is 11 digits starting 1[3-9]; a landline has its area code
# (0 and 2–3 digits), then 7–8 digits not starting with 0, optionally an extension (-123, 转123).
# Nothing else is a phone number (not "13955", nor a landline that lost its area code or 0).
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?[1-9]\d{6,7}(-\d{1,6})?$")


def clean_phone(raw: Any) -> Clean:
    """Mobile (11 digits, 1[3-9]…, +86/0086 prefix dropped) or landline with area code
    (0551-62345678, 055162345678, 0551-62345678-801). Several numbers separated by ,;/、 are kept
    joined by ','."""
    if type(raw) is str and len(raw) == 11 and raw.isascii() and _MOBILE.match(raw):
        return Clean(raw)  # fast path: a well-formed mobile number, the common case
    if is_blank(raw):
        return EMPTY
    if isinstance(raw, float):
        if not raw.is_integer():
            return _err("phone", f"电话号码“{raw}”格式错误", f"Invalid phone number {raw!r}")
        raw = str(int(raw))
    s = to_halfwidth(str(raw)).strip()
    out: list[str] = []
    for part in re.split(r"[,;/、，；]+", s):
        p = re.sub(r"[\s()（）]", "", part).replace("—", "-").replace("－", "-").replace("转", "-")
        if p.startswith("+86"):
            p = p[3:]
        elif p.startswith("0086"):
            p = p[4:]
        p = p.strip("-")
        digits = p.replace("-", "")
        if _MOBILE.match(digits):
            out.append(digits)
        elif _LANDLINE.match(p):
            out.append(p)
        else:
            return _err("phone", f"电话号码“{part.strip()}”格式错误（手机 11 位，固话须带区号）",
                        f"Invalid phone number {part.strip()!r} (mobile: 11 digits; landline with area code)")
    return Clean(",".join(out)) if out else _err("phone", "电话号码格式错误", "Invalid phone number")


# --- enumerations --------------------------------------------------------------------------------

ETHNICITIES: tuple[str, ...] = (
    "汉族", "蒙古族", "回族", "藏族", "维吾尔族", "苗族", "彝族", "壮族", "布依族", "朝鲜族", "满族", "侗族", "瑶族",
    "白族", "土家族", "哈尼族", "哈萨克族", "傣族", "黎族", "傈僳族", "佤族", "畲族", "高山族", "拉祜族", "水族",
    "东乡族", "纳西族", "景颇族", "柯尔克孜族", "土族", "达斡尔族", "仫佬族", "羌族", "布朗族", "撒拉族", "毛南族",
    "仡佬族", "锡伯族", "阿昌族", "普米族", "塔吉克族", "怒族", "乌孜别克族", "俄罗斯族", "鄂温克族", "德昂族",
    "保安族", "裕固族", "京族", "塔塔尔族", "独龙族", "鄂伦春族", "赫哲族", "门巴族", "珞巴族", "基诺族",
)
assert len(ETHNICITIES) == 56


# The one label/parse of enumerations is gridman.core.enums; these names stay for callers.
enum_label = enums.label
parse_enum = enums.parse
_key = enums.text_key


class EnumCleaner:
    """Maps codes, Chinese/English labels and synonyms to a stored value (an enumeration's code, or
    an entry of a closed list such as the 56 民族), through :func:`enums.text_key`."""

    def __init__(self, name_zh: str, name_en: str, mapping: dict[str, str], allowed_hint: Iterable[str]) -> None:
        self.name_zh, self.name_en = name_zh, name_en
        self.mapping = {_key(k): v for k, v in mapping.items()}
        self.hint = "、".join(allowed_hint)
        self._cache: dict[Any, Clean] = {}

    @classmethod
    def for_field(cls, register: str, key: str) -> EnumCleaner:
        """The cleaner of an enumeration field of the catalogue: its label names it in messages,
        :func:`enums.lookup` is its table."""
        fd = fields.get(register).field(key)
        assert fd.enum is not None, key
        return cls(fd.zh, fd.en.lower(), enums.lookup(fd.enum), enums.labels(fd.enum))

    def __call__(self, raw: Any) -> Clean:
        if is_blank(raw):
            return EMPTY
        c = self._cache.get(raw)
        if c is None:
            v = self.mapping.get(_key(raw))
            if v is None:
                c = _err("enum", f"{self.name_zh}“{raw}”无法识别（可填：{self.hint}）",
                         f"Unknown {self.name_en} {raw!r}")
            else:
                c = Clean(v)
            if len(self._cache) < 10_000:
                self._cache[raw] = c
        return c


clean_sex = EnumCleaner.for_field("residents", "sex")
clean_population_type = EnumCleaner.for_field("residents", "population_type")
clean_relation = EnumCleaner.for_field("residents", "relation_to_head")
clean_status = EnumCleaner.for_field("residents", "status")

_eth_map: dict[str, str] = {e: e for e in ETHNICITIES}
_eth_map.update({e[:-1]: e for e in ETHNICITIES if e.endswith("族")})  # 汉 → 汉族
_eth_map.update({"汉": "汉族", "han": "汉族", "蒙古": "蒙古族", "维吾尔": "维吾尔族"})
clean_ethnicity = EnumCleaner("民族", "ethnicity", _eth_map, ["汉族", "回族", "……（56 个民族）"])


@dataclass(frozen=True)
class TagInfo:
    id: int
    code: str
    name: str
    sensitive: bool


class TagIndex:
    """Tag lookup by code, Chinese name, English name or one of ``Tag.synonyms`` ('|'-separated).
    Build it once per import from the ``tags`` table: ``TagIndex.from_rows(session.execute(select(Tag)))``."""

    SPLIT = re.compile(r"[,，、;；|/\s]+")

    def __init__(self, tags: Iterable[Any]) -> None:
        self.by_key: dict[str, TagInfo] = {}
        self.by_code: dict[str, TagInfo] = {}
        for t in tags:
            info = TagInfo(t.id, t.code, t.name, bool(t.sensitive))
            self.by_code[t.code] = info
            for k in [t.code, t.name, t.name_en, *((t.synonyms or "").split("|"))]:
                if k:
                    self.by_key.setdefault(_key(k), info)

    def clean(self, raw: Any) -> Clean:
        """A cell listing tags (低保、残疾人 / low_income,disabled) → tuple of TagInfo."""
        if is_blank(raw):
            return Clean(())
        found: list[TagInfo] = []
        for part in self.SPLIT.split(to_halfwidth(str(raw)).strip()):
            if not part:
                continue
            info = self.by_key.get(_key(part))
            if info is None:
                return _err("tag", f"标签“{part}”不存在", f"Unknown tag {part!r}")
            if info not in found:
                found.append(info)
        return Clean(tuple(found))


# --- header synonyms -----------------------------------------------------------------------------

# The census import's fields: the residents register's "census" view of the field catalogue.
# field → (Chinese label, synonyms…, English label). Matching ignores full-width forms, spaces,
# case, '*' (required marks) and a trailing parenthesised note like "出生日期（yyyy-mm-dd）".
_CENSUS = fields.get("residents").view("census")
HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {fd.key: (fd.zh, *fd.synonyms, fd.en) for fd in _CENSUS}

# Columns gridman itself adds to error reports and exports that an import may safely ignore.
IGNORED_HEADERS = ("序号", "编号", "no", "no.", "#", "错误原因", "导入问题", "原行号", "row", "reason")

_PAREN = re.compile(r"[(（【\[].*?[)）】\]]$")


def header_key(raw: Any) -> str:
    """A header normalised for matching: half-width, no spaces, lower-case, no '*' marks or
    trailing '(format note)'."""
    s = to_halfwidth(str(raw if raw is not None else "")).strip()
    s = s.replace("*", "").replace("★", "")
    s = _PAREN.sub("", s.strip())
    return "".join(s.split()).lower().replace("_", "").replace("-", "")


_HEADER_INDEX: dict[str, str] = {}
for _f, _syns in HEADER_SYNONYMS.items():
    for _s in _syns:
        _HEADER_INDEX.setdefault(header_key(_s), _f)
    _HEADER_INDEX.setdefault(header_key(_f), _f)
_IGNORED = {header_key(h) for h in IGNORED_HEADERS}


def field_for_header(raw: Any) -> str | None:
    """The field a header names, or None if unknown."""
    return _HEADER_INDEX.get(header_key(raw))


def is_ignored_header(raw: Any) -> bool:
    return header_key(raw) in _IGNORED


FIELD_LABELS: dict[str, tuple[str, str]] = {fd.key: (fd.zh, fd.en) for fd in _CENSUS}
