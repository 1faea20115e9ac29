"""The exceptions services raise. Messages are in Chinese (the users' language); ``en`` carries
the English text for the second UI language and logs."""

from __future__ import annotations


class GridmanError(Exception):
    """Base of every error a user may see."""

    def __init__(self, message: str, *, en: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.en = en or message

    def text(self, lang: str = "zh_CN") -> str:
        return self.en if lang.startswith("en") else self.message


class PermissionDenied(GridmanError):
    """The acting user may not do this (the one refusal type of the permission check)."""


class NotFound(GridmanError):
    pass


class ValidationError(GridmanError):
    """Bad input. ``field`` names the offending field when there is one."""

    def __init__(self, message: str, *, field: str | None = None, en: str | None = None) -> None:
        super().__init__(message, en=en)
        self.field = field


class ConflictError(GridmanError):
    """Someone else changed the row since it was read (optimistic locking). Reload and retry."""


class DatabaseBusy(GridmanError):
    """Another writer held the database's write lock longer than a unit of work waits for it."""

    def __init__(self) -> None:
        super().__init__("数据库正忙（另一项写入正在进行），请稍后重试。",
                         en="The database is busy (another write is in progress); please try again shortly.")


class InvalidTransition(GridmanError):
    """A workflow step that is not allowed from the current state."""
