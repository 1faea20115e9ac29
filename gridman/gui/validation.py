"""As-you-type checks for forms (ID check digit, dates, required fields). The services check
again on save; these only give early feedback in the user's language."""

from __future__ import annotations

from datetime import date

from gridman.core import idcard
from gridman.gui.i18n import language, tr


def check_id(text: str) -> tuple[str | None, idcard.IdInfo | None]:
    """(error message or None, parsed info). Empty text is allowed (not every resident has one)."""
    t = text.strip()
    if not t:
        return None, None
    try:
        info = idcard.parse(t)
    except idcard.IdCardError as exc:
        return exc.text(language()), None  # the one set of ID messages (idcard.MESSAGES)
    return None, info


def check_date(text: str, *, required: bool = False) -> tuple[str | None, date | None]:
    t = text.strip()
    if not t:
        return (tr("请填写日期") if required else None), None
    try:
        d = date.fromisoformat(t)
    except ValueError:
        return tr("日期格式应为 年-月-日，例如 1980-05-17"), None
    if d > date.today():
        return tr("日期不能晚于今天"), None
    if d.year < 1880:
        return tr("日期不合理"), None
    return None, d


def check_required(text: str, what: str) -> str | None:
    return tr("{what}不能为空").format(what=what) if not text.strip() else None
