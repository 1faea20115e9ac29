"""``gridman login USER`` / ``logout`` / ``whoami``, and how every command finds who is acting.

A command acts as the account that proved who it is, one of three ways:
- ``--as USER`` with the password from ``--password-file FILE`` (its first line; the file must not
  be readable by others) or typed at a prompt (only when stdin is a terminal);
- a session from ``gridman login`` (``--session FILE``, ``$GRIDMAN_SESSION``, or by default the
  session file of the database in the data directory); with ``--as USER`` the session must be
  USER's;
- nothing, only for the commands in :data:`SYSTEM_COMMANDS` (creating, upgrading and checking a
  database, the sample, the first account), which then run as the built-in system account.
A password is never taken as a command-line argument. Every password check is
:func:`auth.authenticate`.
"""

from __future__ import annotations

import argparse
import getpass
import os
import stat
import sys
from pathlib import Path

from gridman.cli.common import Context, add_json
from gridman.core.db import resolve_url
from gridman.core.enums import label
from gridman.core.services import auth, sessions
from gridman.core.services.errors import PermissionDenied, ValidationError
from gridman.core.services.permissions import Actor, system_actor

# (command, sub-command) that may run without signing in; None = any sub-command.
SYSTEM_COMMANDS: frozenset[tuple[str, str | None]] = frozenset({
    ("db", "init"), ("db", "upgrade"), ("db", "check"), ("sample", None), ("users", "add"),
})
# Commands that sign in (or out) themselves.
OWN_SIGN_IN = frozenset({"login", "logout"})


def register(sub: argparse._SubParsersAction) -> None:
    p = add_json(sub.add_parser("login", help="sign in: start a session for later commands (8 hours)"))
    p.add_argument("user", metavar="USER", help="user name")
    p.add_argument("--password-file", dest="login_password_file", metavar="FILE",
                   help="the password: first line of FILE (chmod 600); else a prompt")
    p.add_argument("--hours", type=float, default=sessions.DEFAULT_HOURS, help="how long the session lasts")
    p.set_defaults(func=cmd_login)
    add_json(sub.add_parser("logout", help="end the current session")).set_defaults(func=cmd_logout)
    add_json(sub.add_parser("whoami", help="the signed-in account")).set_defaults(func=cmd_whoami)


def subcommand(args: argparse.Namespace) -> tuple[str, str | None]:
    cmd = str(getattr(args, "command", None))
    for name in (f"{cmd}_command", f"{cmd}_cmd", f"{cmd}_action", "action"):
        value = getattr(args, name, None)
        if isinstance(value, str):
            return cmd, value
    return cmd, None


def is_system_command(args: argparse.Namespace) -> bool:
    cmd, sub = subcommand(args)
    return (cmd, None) in SYSTEM_COMMANDS or (cmd, sub) in SYSTEM_COMMANDS


def session_file(ctx: Context) -> Path:
    """The session file this command reads and ``login`` writes."""
    explicit = getattr(ctx.args, "session", None) or os.environ.get(sessions.SESSION_ENV)
    return Path(explicit).expanduser() if explicit else sessions.default_file(resolve_url(ctx.args.db))


def read_password_file(path_text: str) -> str:
    """The first line of a password file that only its owner may read."""
    path = Path(path_text).expanduser()
    try:
        st = path.stat()
        with path.open(encoding="utf-8") as f:
            line = f.readline()
    except (OSError, UnicodeDecodeError):
        raise ValidationError(f"无法读取密码文件 {path}", field="password-file",
                              en=f"Cannot read the password file {path}") from None
    if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValidationError(f"密码文件 {path} 可被其他用户读取，请先执行 chmod 600 {path}", field="password-file",
                              en=f"The password file {path} is readable by others; run chmod 600 {path} first")
    return line.rstrip("\r\n")


def password_for(args: argparse.Namespace, user: str) -> str | None:
    """USER's password from ``--password-file`` or a prompt on a terminal; None if neither."""
    path = getattr(args, "login_password_file", None) or getattr(args, "password_file", None)
    if path:
        return read_password_file(path)
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(f"{user} 的密码 / password: ")
    return None


def check_user_name(user: str | None) -> None:
    if user is not None and not user.strip():
        raise ValidationError("--as 需要一个用户名", field="as", en="--as needs a user name")


def _from_session(ctx: Context, user: str | None) -> Actor | None:
    token = sessions.read_token(session_file(ctx))
    if token is None:
        return None
    with ctx.db.session() as s:
        actor = sessions.resume(s, token)
    if user is not None and actor.username != user:
        return None
    return actor


def signed_in_actor(ctx: Context, *, required: bool) -> Actor:
    """The account this command acts as (see the module's docstring). ``required`` False: the
    system account when there is no sign-in (:data:`SYSTEM_COMMANDS`)."""
    args = ctx.args
    user = args.as_user
    check_user_name(user)
    if getattr(args, "password_file", None) and user is None:
        raise ValidationError("--password-file 需要与 --as 用户名 一起使用", field="password-file",
                              en="--password-file goes with --as USER")
    if user is not None:
        if not getattr(args, "password_file", None):
            actor = _session_or_none(ctx, user)
            if actor is not None:
                return actor
        password = password_for(args, user)
        if password is None:
            raise sessions.not_signed_in()
        with ctx.db.begin() as s:
            return auth.authenticate(s, user, password)
    try:
        actor = _from_session(ctx, None)
    except PermissionDenied:
        if required:
            raise
        actor = None
    if actor is not None:
        return actor
    if required:
        raise sessions.not_signed_in()
    with ctx.db.session() as s:
        return system_actor(s)


def _session_or_none(ctx: Context, user: str) -> Actor | None:
    try:
        return _from_session(ctx, user)
    except PermissionDenied:
        return None


def sign_in(ctx: Context) -> None:
    """Before a command runs: its account (refused without a valid sign-in unless it is one of
    :data:`SYSTEM_COMMANDS` or signs in itself), and ``--now`` for administrators only."""
    check_user_name(ctx.args.as_user)
    if getattr(ctx.args, "command", None) in OWN_SIGN_IN or is_system_command(ctx.args):
        return
    ctx._actor = signed_in_actor(ctx, required=True)
    check_now(ctx, ctx._actor)


def check_now(ctx: Context, actor: Actor) -> None:
    """``--now`` (run as if at another time) is for administrators only."""
    if getattr(ctx.args, "now", None) is not None and not actor.is_admin:
        raise PermissionDenied("只有管理员可以使用 --now 指定时间", en="Only administrators may use --now")


def cmd_login(ctx: Context) -> int:
    a = ctx.args
    check_user_name(a.user)
    sessions.check_hours(a.hours)
    password = password_for(a, a.user)
    if password is None:
        raise ValidationError("请在终端中输入密码，或使用 --password-file 文件", field="password",
                              en="Type the password at a terminal, or use --password-file FILE")
    with ctx.db.begin() as s:
        token, info = sessions.login(s, a.user, password, hours=a.hours)
    path = session_file(ctx)
    sessions.write_token(path, token)
    out = {"username": info.username, "display_name": info.display_name, "role": info.role,
           "expires_at": info.expires_at, "session_file": str(path)}
    ctx.out(out, lambda: f"已登录：{info.display_name}（{info.username}），有效至 {info.expires_at:%Y-%m-%d %H:%M} UTC")
    return 0


def cmd_logout(ctx: Context) -> int:
    path = session_file(ctx)
    token = sessions.read_token(path)
    ended = None
    if token is not None:
        with ctx.db.begin() as s:
            ended = sessions.logout(s, token)
        path.unlink(missing_ok=True)
    out = {"logged_out": ended is not None, "username": ended.username if ended else None}
    ctx.out(out, lambda: f"已退出登录：{ended.username}" if ended else "当前没有登录")
    return 0


def cmd_whoami(ctx: Context) -> int:
    actor = ctx.actor
    token = None if ctx.args.as_user and getattr(ctx.args, "password_file", None) else \
        sessions.read_token(session_file(ctx))
    expires = None
    if token is not None:
        with ctx.db.session() as s:
            try:
                info = sessions.info(s, token)
                expires = info.expires_at if info.user_id == actor.user_id else None
            except PermissionDenied:
                expires = None
    out = {"username": actor.username, "display_name": actor.display_name, "role": actor.role.value,
           "area": actor.area_name, "expires_at": expires}
    ctx.out(out, lambda: f"{actor.display_name}（{actor.username}，{label(actor.role, ctx.lang)}）"
            + (f"，会话有效至 {expires:%Y-%m-%d %H:%M} UTC" if expires else ""))
    return 0
