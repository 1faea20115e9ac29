"""The password policy (密码规则), applied wherever a password is set — new accounts, an
administrator's reset, a user's own change, the first-run wizard — and never at sign-in (an old
password keeps working until it is changed). The sample writer hashes its demo password directly.

A password must have at least :data:`MIN_LENGTH` characters from at least two classes (lower-case
letters, upper-case letters, digits, other characters), must not contain the user name, and must
not be one of the common passwords of :mod:`~gridman.core.services.common_passwords`.
"""

from __future__ import annotations

from gridman.core.services.common_passwords import COMMON_PASSWORDS
from gridman.core.services.errors import ValidationError

MIN_LENGTH = 8
MAX_LENGTH = 256  # a bound, not advice: hashing a megabyte per attempt would be a cheap attack

RULE_ZH = f"密码至少 {MIN_LENGTH} 位，包含小写字母、大写字母、数字、符号中的至少两类，不能包含用户名，也不能是常见密码。"
RULE_EN = (f"A password needs at least {MIN_LENGTH} characters from at least two of: lower-case letters, "
           "upper-case letters, digits, symbols; it must not contain the user name or be a common password.")


def _classes(password: str) -> int:
    kinds = {"lower" if c.islower() else "upper" if c.isupper() else "digit" if c.isdigit() else "other"
             for c in password}
    return len(kinds)


def problem(password: str, username: str | None = None) -> tuple[str, str] | None:
    """What is wrong with ``password`` for ``username`` as (zh, en), or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return (f"密码太短：至少需要 {MIN_LENGTH} 位。", f"The password is too short: it needs at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        return (f"密码太长：最多 {MAX_LENGTH} 位。", f"The password is too long: at most {MAX_LENGTH} characters.")
    if _classes(password) < 2:
        return ("密码太简单：请混合使用小写字母、大写字母、数字、符号中的至少两类。",
                "The password is too simple: mix at least two of lower-case letters, upper-case letters, "
                "digits and symbols.")
    name = (username or "").strip().lower()
    if len(name) >= 3 and name in password.lower():
        return ("密码不能包含用户名。", "The password must not contain the user name.")
    if password.lower() in COMMON_PASSWORDS:
        return ("这是常见密码，很容易被猜到，请换一个。", "This is a common password that is easy to guess; choose another.")
    return None


def check(password: str, username: str | None = None) -> None:
    """Raise :class:`ValidationError` (field ``password``) saying what the password still needs."""
    p = problem(password, username)
    if p is not None:
        raise ValidationError(f"{p[0]}{RULE_ZH}", field="password", en=f"{p[1]} {RULE_EN}")
