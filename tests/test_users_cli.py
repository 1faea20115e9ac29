"""``gridman users add|list|edit|disable|passwd|unlock`` (issue #15 Build 1, #16 Build 3), in
process, on both databases: the first administrator without signing in, passwords only from a
file or a terminal prompt and under the policy, the same services as the users page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from gridman.cli import main
from gridman.core.enums import Role
from gridman.core.models import AuditEntry, User
from gridman.core.services import auth, setup
from gridman.core.services.errors import PermissionDenied
from tests.helpers import PASSWORD, build_tree, make_user, signed_in


def cli(capsys, *argv: str) -> tuple[int, dict | None, str]:  # type: ignore[no-untyped-def]
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, (json.loads(out.out) if rc == 0 and out.out.strip().startswith("{") else None), out.err


def _pw(tmp_path: Path, text: str, name: str = "pw.txt") -> str:
    p = tmp_path / name
    p.write_text(text + "\n", encoding="utf-8")
    return str(p)


def _sign_in(db, user: str, password: str):  # type: ignore[no-untyped-def]
    with db.begin() as s:
        return auth.authenticate(s, user, password)


def test_the_first_administrator_from_an_empty_database(db, tmp_path, capsys):
    """Before: ``db init`` left only the system account, and no command created a user."""
    rc, _o, err = cli(capsys, "--db", db.url, "users", "add", "chief", "--role", "clerk",
                      "--password-file", _pw(tmp_path, "Head-pass-1"), "--json")
    assert rc == 2 and "管理员" in err  # the first account is an administrator
    rc, _o, err = cli(capsys, "--db", db.url, "users", "add", "chief", "--password-file", _pw(tmp_path, "123456"))
    assert rc == 2 and "至少需要 8 位" in err
    rc, out, err = cli(capsys, "--db", db.url, "users", "add", "chief", "--name", "王主任",
                       "--password-file", _pw(tmp_path, "Head-pass-1"), "--json")
    assert rc == 0, err
    assert (out["username"], out["role"], out["display_name"]) == ("chief", "admin", "王主任")
    assert _sign_in(db, "chief", "Head-pass-1").role == Role.ADMIN
    with db.session() as s:
        assert not auth.needs_first_account(s)
        with pytest.raises(PermissionDenied):  # the no-sign-in path is closed once an account exists
            setup.first_account(s, username="second", display_name="x", password="Second-pass-1")
        entry = s.scalars(select(AuditEntry).where(AuditEntry.table_name == "users",
                                                   AuditEntry.action == "insert")).one()
        assert entry.username == "system" and entry.changes["password_hash"] == [None, "***"]


def test_password_never_an_argument_nor_piped(db, tmp_path, capsys):
    build_tree(db)
    make_user(db, "boss", Role.ADMIN)
    rc, out, err = cli(capsys, *signed_in(db.url, "boss"), "users", "add", "x1", "--role", "clerk",
                       "--password", "Abcdefg-1")
    assert rc == 2 and "命令行" in err and "Abcdefg-1" not in err + str(out)  # refused, and not repeated
    rc, _o, err = cli(capsys, *signed_in(db.url, "boss"), "users", "add", "x1", "--role", "clerk")
    assert rc == 2 and "--password-file" in err  # stdin is not a terminal here: no prompt, no read
    with db.session() as s:
        assert s.scalar(select(User.id).where(User.username == "x1")) is None


def test_add_list_edit_disable_passwd_unlock(db, tmp_path, capsys):
    t = build_tree(db)
    make_user(db, "boss", Role.ADMIN)
    me = signed_in(db.url, "boss")
    with db.session() as s:
        from gridman.core.models import Area

        community_code = s.get(Area, t.community).code
        street_code = s.get(Area, t.street).code
    rc, out, err = cli(capsys, *me, "users", "add", "sq1", "--name", "李四", "--role", "community_staff",
                       "--area", community_code, "--password-file", _pw(tmp_path, "Staff-pass-1"), "--json")
    assert rc == 0, err
    assert (out["role"], out["area_id"]) == ("community_staff", t.community)
    rc, _o, err = cli(capsys, *me, "users", "add", "sq2", "--role", "street_supervisor", "--area", community_code,
                      "--password-file", _pw(tmp_path, "Staff-pass-1"))
    assert rc == 2 and "街道" in err  # the role needs a street, as in the GUI's dialog
    rc, out, err = cli(capsys, *me, "users", "edit", "sq1", "--role", "street_supervisor", "--area", street_code,
                       "--json")
    assert rc == 0 and (out["role"], out["area_id"]) == ("street_supervisor", t.street), err
    rc, out, _e = cli(capsys, *me, "users", "disable", "sq1", "--json")
    assert rc == 0 and out["active"] is False
    with pytest.raises(PermissionDenied):
        _sign_in(db, "sq1", "Staff-pass-1")
    rc, out, _e = cli(capsys, *me, "users", "edit", "sq1", "--enable", "--json")
    assert rc == 0 and out["active"] is True
    # an administrator resets a password (policy applies); the user changes their own
    rc, _o, err = cli(capsys, *me, "users", "passwd", "sq1", "--password-file", _pw(tmp_path, "password1"))
    assert rc == 2 and "常见密码" in err
    rc, _o, err = cli(capsys, *me, "users", "passwd", "sq1", "--password-file", _pw(tmp_path, "Reset-pass-2"))
    assert rc == 0, err
    rc, out, err = cli(capsys, *signed_in(db.url, "sq1", "Reset-pass-2"), "users", "passwd", "--json",
                       "--current-password-file", _pw(tmp_path, "Reset-pass-2", "cur.txt"),
                       "--password-file", _pw(tmp_path, "Own-pass-3"))
    assert rc == 0 and out["password_changed"], err
    assert _sign_in(db, "sq1", "Own-pass-3").username == "sq1"
    # locked after failures; unlocked by the administrator from the CLI
    for _ in range(5):
        with pytest.raises(PermissionDenied):
            _sign_in(db, "sq1", "not-it-at-all")
    rc, out, _e = cli(capsys, *me, "users", "list", "--json")
    row = next(u for u in out["users"] if u["username"] == "sq1")
    assert row["locked_until"] is not None and row["active"] is True
    assert "password" not in json.dumps(out) and "argon2" not in json.dumps(out)
    rc, _o, err = cli(capsys, *signed_in(db.url, "sq1", "Own-pass-3"), "users", "unlock", "sq1")
    assert rc == 2  # not an administrator
    rc, out, err = cli(capsys, *me, "users", "unlock", "sq1", "--json")
    assert rc == 0, err
    assert _sign_in(db, "sq1", "Own-pass-3").username == "sq1"
    rc, out, _e = cli(capsys, *me, "users", "list", "--json")
    assert {u["username"] for u in out["users"]} == {"boss", "sq1"}  # never the system account
    assert PASSWORD not in json.dumps(out)
