"""公民身份号码 (GB 11643-1999): validation, normalisation, masking and generation.

18 characters: 6-digit area code, 8-digit birth date, 3-digit sequence (the last odd for men,
even for women), and a mod 11-2 check character (0–9 or X). A first-generation 15-digit number
(GB 11643-1989: 6-digit area, 6-digit birth date yymmdd, 3-digit sequence, no check character)
is converted: "19" goes before the year and the check character is computed (:func:`upgrade`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
_FULLWIDTH = str.maketrans("０１２３４５６７８９ｘＸ", "0123456789XX")
_SCI = re.compile(r"^\d(\.\d+)?[eE]\+?\d+$")


# THE messages about a citizen ID, (Chinese, English), used by the census import, the offline
# exchange and the GUI's as-you-type check alike. Keyed by message; ``code`` groups them
# (both birth-date messages have code "birth_date").
MESSAGES: dict[str, tuple[str, str, str]] = {  # key: (code, Chinese, English)
    "corrupted": ("corrupted", "身份证号被 Excel 转成了科学计数法数字，末几位已丢失，请把该列设为文本后重新填写",
                  "Excel turned the ID into a number in scientific notation; its last digits are lost. "
                  "Format the column as text and type it again"),
    "length": ("length", "身份证号应为 18 位，实际 {n} 位", "A citizen ID has 18 characters, this one {n}"),
    "chars": ("chars", "身份证号只能包含数字，最后一位可以是 X", "A citizen ID has digits only, the last may be X"),
    "birth_date": ("birth_date", "身份证号中的出生日期 {d} 不存在", "The birth date {d} inside the ID does not exist"),
    "birth_date_implausible": ("birth_date", "身份证号中的出生日期 {d} 不合理",
                               "The birth date {d} inside the ID is implausible"),
    "check_digit": ("check_digit", "身份证号校验位错误（应为 {c}）", "Wrong check digit (should be {c})"),
    "invalid": ("chars", "身份证号格式错误", "Not a citizen ID"),
    "upgraded": ("upgraded", "15 位身份证号 {old} 已升为 18 位 {new}",
                 "The 15-digit citizen ID {old} was converted to 18 digits: {new}"),
}


class IdCardError(ValueError):
    """Why a citizen ID is not valid: ``code`` is machine-readable, ``str(exc)`` (= ``zh``) the
    Chinese message, ``en`` the English one; :meth:`text` picks by language."""

    def __init__(self, key: str, **params: object) -> None:
        code, zh, en = MESSAGES[key]
        super().__init__(zh.format(**params))
        self.code = code
        self.zh = str(self)
        self.en = en.format(**params)

    def text(self, lang: str = "zh_CN") -> str:
        return self.en if lang.startswith("en") else self.zh


def check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def normalize(raw: object) -> str:
    """Strip spaces, convert full-width digits and a lower-case x. Does not validate."""
    s = str(raw).translate(_FULLWIDTH)
    s = "".join(s.split()).replace("x", "X")
    return s


@dataclass(frozen=True)
class IdInfo:
    number: str
    area_code: str
    birth_date: date
    sex: str  # 'M' / 'F'
    from15: str | None = None  # the first-generation number it was converted from

    def note(self) -> tuple[str, str] | None:
        """(Chinese, English) remark on the number, if it was converted from 15 digits."""
        if self.from15 is None:
            return None
        _code, zh, en = MESSAGES["upgraded"]
        return zh.format(old=self.from15, new=self.number), en.format(old=self.from15, new=self.number)


def upgrade(number15: str) -> str:
    """A first-generation 15-digit ID as 18 digits: "19" before the 2-digit year (those numbers
    were issued to people born in the 1900s), then the check character."""
    first17 = number15[:6] + "19" + number15[6:]
    return first17 + check_char(first17)


def parse(raw: object) -> IdInfo:
    """Validate a citizen ID and return what it encodes. Raises :class:`IdCardError`.

    A number that Excel stored as a float (``3.40104199001011E+17``) lost its last digits: it is
    reported as corrupted, never guessed back.
    """
    if isinstance(raw, float) and raw.is_integer() and 1e14 <= raw < 1e15:
        raw = int(raw)  # a 15-digit number: exact in a float (Excel keeps 15 significant digits)
    if isinstance(raw, float) or (isinstance(raw, str) and _SCI.match(raw.strip())):
        raise IdCardError("corrupted")
    if isinstance(raw, int):
        raw = str(raw)
    s = normalize(raw)
    from15 = None
    if len(s) == 15 and s.isascii() and s.isdigit():
        from15, s = s, upgrade(s)
    if len(s) != 18:
        raise IdCardError("length", n=len(s))
    if not (s.isascii() and s[:17].isdigit() and s[17] in "0123456789X"):  # isdigit alone accepts "²", "٣"
        raise IdCardError("chars")
    try:
        born = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise IdCardError("birth_date", d=s[6:14]) from None
    if born.year < 1880 or born > date.today():
        raise IdCardError("birth_date_implausible", d=s[6:14])
    expected = check_char(s[:17])
    if s[17] != expected:
        raise IdCardError("check_digit", c=expected)
    return IdInfo(s, s[:6], born, "M" if int(s[16]) % 2 == 1 else "F", from15)


def is_valid(raw: object) -> bool:
    try:
        parse(raw)
    except IdCardError:
        return False
    return True


def make(area_code: str, born: date, seq: int, sex: str) -> str:
    """Build a valid ID: ``seq`` 0–499 numbers the people of one area, day and sex."""
    if not 0 <= seq < 500:
        raise ValueError("seq must be in 0..499")
    first17 = f"{area_code}{born:%Y%m%d}{seq * 2 + (1 if sex == 'M' else 0):03d}"
    return first17 + check_char(first17)


def mask(number: str | None) -> str | None:
    """3401************** — what roles without the right to see IDs get.

    Only the province and city (the first four digits) are kept. The old mask also kept the last
    four (three sequence digits and the check digit): next to the birth date and sex the same role
    sees, that left only the county (two digits, a handful in one city) unknown — about 9
    candidates, each a probe away from the whole ID. Hiding the last four too leaves the county
    *and* the sequence (500 values once the sex fixes its parity; the check digit follows) —
    thousands of candidates per person; and a role that sees masked IDs may neither search, filter
    nor sort by the ID (:func:`permissions.require_use`), nor be told who holds one
    (:func:`permissions.names_holder`), so nothing narrows them."""
    if not number:
        return number
    if len(number) <= 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 4)
