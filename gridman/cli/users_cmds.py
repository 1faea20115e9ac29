"""``gridman users add|list|edit|disable|passwd|unlock``: accounts from the command line, over the
same services as the GUI's users page (``services.auth``, ``services.lockout``).

A password is never an argument (it would sit in the shell history and the process list): it is
typed at a prompt (a terminal only, twice) or read from the first line of ``--password-file``.
``users add`` on a database where nobody can sign in yet (:func:`auth.needs_first_account`)
creates the first administrator without signing in (:func:`setup.first_account`); after that it
needs an administrator like every other sub-command. ``users passwd`` without a user name changes
one's own password (the current one is asked for too).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from gridman.cli.common import Context, add_json
from gridman.core.enums import Role
from gridman.core.services import auth, lockout, registers, setup
from gridman.core.services.errors import ValidationError
from gridman.core.services.password_policy import RULE_EN, RULE_ZH


def register(sub: argparse._SubParsersAction) -> None:
    u = sub.add_parser("users", help="accounts: add, list, edit, disable, passwd, unlock (用户管理)")
    us = u.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    # no abbreviations: "--password X" must not be taken for "--password-file X"
    roles = [r.value for r in Role]
    p = add_json(us.add_parser("add", allow_abbrev=False, help="create an account (the first one: an administrator, no sign-in)"))
    p.add_argument("username")
    p.add_argument("--name", dest="display_name", help="姓名 (default: the user name)")
    p.add_argument("--role", choices=roles, help="role (default admin for the first account, else required)")
    p.add_argument("--area", help="scope area code (community staff: a community; supervisors: a street)")
    # dest differs from the global --password-file (the signing-in user's own password)
    p.add_argument("--password-file", dest="new_password_file", type=Path,
                   help="read the new account's password from the first line of this file")
    _no_password_argument(p)
    p.set_defaults(func=cmd_add)
    p = add_json(us.add_parser("list", help="list the accounts"))
    p.set_defaults(func=cmd_list)
    p = add_json(us.add_parser("edit", help="change name, role, scope area, or enable an account"))
    p.add_argument("username")
    p.add_argument("--name", dest="display_name")
    p.add_argument("--role", choices=roles)
    p.add_argument("--area", help="scope area code")
    p.add_argument("--enable", action="store_true", help="enable a disabled account")
    p.set_defaults(func=cmd_edit)
    p = add_json(us.add_parser("disable", help="disable an account (it can no longer sign in)"))
    p.add_argument("username")
    p.set_defaults(func=cmd_disable)
    p = add_json(us.add_parser("passwd", allow_abbrev=False, help="change your own password, or (administrators) reset another's"))
    p.add_argument("username", nargs="?", help="whose password to reset (default: your own)")
    p.add_argument("--password-file", dest="new_password_file", type=Path,
                   help="the new password, first line of this file")
    p.add_argument("--current-password-file", type=Path, help="your current password (own password only)")
    _no_password_argument(p)
    p.set_defaults(func=cmd_passwd)
    p = add_json(us.add_parser("unlock", help="lift the lock after repeated failed sign-ins"))
    p.add_argument("username")
    p.set_defaults(func=cmd_unlock)


def _no_password_argument(p: argparse.ArgumentParser) -> None:
    """``--password`` exists only to be refused with a clear answer (which never repeats it)."""
    p.add_argument("--password", dest="password_argument", help=argparse.SUPPRESS)


def _refuse_password_argument(ctx: Context) -> None:
    if getattr(ctx.args, "password_argument", None) is not None:
        raise ValidationError("密码不能写在命令行上（会留在命令历史里）：请在提示时输入，或用 --password-file",
                              field="password", en="A password never goes on the command line (it stays in the "
                                                   "shell history): type it when asked, or use --password-file")


def read_password(path: Path | None, *, prompt: str = "密码 / password: ", confirm: bool = True,
                  show_rule: bool = True) -> str:
    """The password from the first line of ``path``, else typed at a terminal (twice when
    ``confirm``); refused when neither is possible (a pipe is not a terminal)."""
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise ValidationError(f"无法读取密码文件 {path}", field="password-file",
                                  en=f"Cannot read the password file {path}") from None
        lines = text.splitlines()
        return lines[0] if lines else ""
    if not sys.stdin.isatty():
        raise ValidationError("请在终端中输入密码，或用 --password-file 指定密码文件（密码不能写在命令行上）",
                              field="password", en="Type the password at a terminal or give --password-file "
                                                   "(never on the command line)")
    if show_rule:
        print(f"{RULE_ZH}\n{RULE_EN}", file=sys.stderr)
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("再次输入 / again: ") != first:
        raise ValidationError("两次输入的密码不一致", field="password", en="The two passwords differ")
    return first


def _area_id(s: Any, code: str | None) -> int | None:
    from gridman.core.services.areas import by_code

    return by_code(s, code).id if code else None


def _show(d: auth.UserDetails) -> dict[str, Any]:
    return {"id": d.id, "username": d.username, "display_name": d.display_name, "role": d.role,
            "area_id": d.area_id, "active": d.active}


def cmd_add(ctx: Context) -> int:
    _refuse_password_argument(ctx)
    a = ctx.args
    with ctx.db.session() as s:
        first = auth.needs_first_account(s)
    if first and a.role not in (None, Role.ADMIN.value):
        raise ValidationError("第一个账号必须是管理员（--role admin）", field="role",
                              en="The first account must be an administrator (--role admin)")
    if not first and a.role is None:
        raise ValidationError("请用 --role 指定角色", field="role", en="Give the role with --role")
    password = read_password(a.new_password_file)
    if first:
        from gridman.core.services.permissions import system_actor

        with ctx.db.session() as s:
            sys_actor = system_actor(s)
        with ctx.db.work(sys_actor) as s:
            user = setup.first_account(s, username=a.username, display_name=a.display_name or a.username,
                                       password=password)
            uid = user.id
    else:
        # accounts exist: only a real sign-in adds more (never the system account the sign-in
        # gate lets `users add` fall back to for the very first account)
        from gridman.cli.login_cmds import signed_in_actor

        actor = signed_in_actor(ctx, required=True)
        with ctx.db.work(actor) as s:
            uid = auth.create_user(s, actor, username=a.username, display_name=a.display_name or a.username,
                                   password=password, role=a.role, area_id=_area_id(s, a.area)).id
    return _print_user(ctx, a.username, "已创建用户", "created", uid=uid, first=first)


def _print_user(ctx: Context, username: str, zh: str, en: str, *, uid: int | None = None,
                first: bool = False) -> int:
    from gridman.core.services.permissions import system_actor

    with ctx.db.session() as s:
        viewer = system_actor(s) if first else ctx.actor
        d = auth.user_details(s, viewer, uid) if uid is not None else auth.find_user(s, viewer, username)
    ctx.out(_show(d), lambda: f"{zh} / {en}: {d.username}（{d.display_name}，{d.role}）")
    return 0


def cmd_list(ctx: Context) -> int:
    actor = ctx.actor
    keys = [c.key for c in registers.COLUMNS["users"]]
    with ctx.db.session() as s:
        n = registers.count(s, actor, "users")
        page = registers.page(s, actor, "users", limit=max(n, 1))
    rows = [{"id": i, **dict(zip(keys, r, strict=True))} for i, r in zip(page.ids, page.rows, strict=True)]

    def text() -> str:
        return "\n".join(
            f"{r['username']}\t{r['display_name']}\t{r['role']}\t{r['area'] or ''}\t"
            f"{'启用' if r['active'] else '停用'}{'，锁定至 ' + str(r['locked_until']) if r['locked_until'] else ''}"
            for r in rows) or "（没有用户）"

    ctx.out({"users": rows}, text)
    return 0


def _edit(ctx: Context, username: str, zh: str, en: str, **kw: Any) -> int:
    actor = ctx.actor
    with ctx.db.work(actor) as s:
        d = auth.find_user(s, actor, username)
        auth.update_user(s, actor, d.id, expected_version=d.version, **kw)
    return _print_user(ctx, username, zh, en)


def cmd_edit(ctx: Context) -> int:
    a = ctx.args
    kw: dict[str, Any] = {"display_name": a.display_name, "role": a.role, "active": True if a.enable else None}
    if a.area:
        with ctx.db.session() as s:
            kw["area_id"] = _area_id(s, a.area)
    return _edit(ctx, a.username, "已修改用户", "updated", **kw)


def cmd_disable(ctx: Context) -> int:
    return _edit(ctx, ctx.args.username, "已停用用户", "disabled", active=False)


def cmd_passwd(ctx: Context) -> int:
    _refuse_password_argument(ctx)
    a = ctx.args
    actor = ctx.actor
    own = a.username is None or a.username == actor.username
    if own:
        current = read_password(a.current_password_file, prompt="当前密码 / current password: ", confirm=False,
                                show_rule=False)
        new = read_password(a.new_password_file, prompt="新密码 / new password: ")
        with ctx.db.work(actor) as s:
            auth.change_password(s, actor, old_password=current, new_password=new)
        ctx.out({"username": actor.username, "password_changed": True},
                f"密码已修改 / password changed: {actor.username}")
        return 0
    new = read_password(a.new_password_file, prompt="新密码 / new password: ")
    return _edit(ctx, a.username, "已重设密码", "password reset", new_password=new)


def cmd_unlock(ctx: Context) -> int:
    actor = ctx.actor
    with ctx.db.work(actor) as s:
        d = auth.find_user(s, actor, ctx.args.username)
        lockout.unlock(s, actor, d.id)
    return _print_user(ctx, ctx.args.username, "已解除锁定", "unlocked")
