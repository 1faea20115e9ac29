"""Staff: user accounts, roles and warden↔grid assignments (网格员与网格)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridman.core.models.base import Base, SyncMixin


class User(SyncMixin, Base):  # 用户
    """An account. ``password_hash`` is argon2id (never the password; services.security). ``area_id`` is the scope:
    the community of community staff, the street of a supervisor, optional for clerks (their
    import/export scope) and administrators; wardens' grids come from :class:`WardenAssignment`."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(60), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)  # enums.Role
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    phone: Mapped[str | None] = mapped_column(String(30))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    is_system: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)  # built-in CLI admin
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    # sign-in lockout (services.lockout): failures in the current window, its start, the lock's end
    failed_logins: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    first_failed_at: Mapped[datetime | None] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)

    assignments: Mapped[list[WardenAssignment]] = relationship(back_populates="user")


class WardenAssignment(SyncMixin, Base):  # 网格员分配
    __tablename__ = "warden_assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    grid_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), nullable=False, index=True)
    start_date: Mapped[date] = mapped_column(Date, nullable=False)
    end_date: Mapped[date | None] = mapped_column(Date)  # None = current
    is_primary: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)  # 网格长 vs 专职/兼职

    user: Mapped[User] = relationship(back_populates="assignments")

    __table_args__ = (Index("ix_warden_assignments_user_end", "user_id", "end_date"),)


class CliSession(Base):  # 命令行登录会话
    """A command-line sign-in made by ``gridman login`` (:mod:`gridman.core.services.sessions`).

    Only the SHA-256 of the random token is kept here; the token itself is in a 0600 file of the
    user who signed in. A session is valid until ``expires_at`` unless ended (logout) or its
    account is disabled. Written with Core statements, not through the ORM audit hook: its
    login/logout rows are recorded explicitly."""

    __tablename__ = "cli_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
