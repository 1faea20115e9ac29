"""One identity for the CLI (issue #16, Build 3): a command acts as the account that proved who it is
— a password (``--as USER --password-file FILE``) or a session of ``gridman login`` — never as a
name merely claimed; the system account only for creating, upgrading and checking a database and
the sample; ``--now`` for administrators only; the audit log names the signed-in account; a
database URL is shown without its password. On SQLite and PostgreSQL, in-process ``main([...])``."""

from __future__ import annotations

import argparse
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from gridman.cli import main
from gridman.cli.login_cmds import is_system_command
from gridman.core import config
from gridman.core.db import Database
from gridman.core.models import AuditEntry, CliSession, Incident, User, utcnow
from gridman.core.sample import SAMPLE_PASSWORD
from gridman.core.services import auth, sessions
from gridman.core.services.permissions import system_actor

NOT_SIGNED_IN = "请先登录"
REPORT = ["incidents", "report", "--grid", "340104001001001", "--category", "矛盾纠纷", "--title", "身份测试",
          "--json"]


def url_of(db: Database) -> str:
    return str(db.sqlite_path) if db.dialect == "sqlite" else db.url


def secret_file(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(args))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def counts(db: Database) -> tuple[int, int]:
    """(incidents, audit rows about incidents): what a refused report must leave as it was."""
    with db.session() as s:
        return (s.scalar(select(func.count()).select_from(Incident)) or 0,
                s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.table_name == "incidents"))
                or 0)


def disable(db: Database, username: str) -> None:
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        auth.update_user(s, admin, s.scalar(select(User.id).where(User.username == username)), active=False)


@pytest.fixture
def pw(tmp_path: Path) -> Path:
    return secret_file(tmp_path / "pw.txt", SAMPLE_PASSWORD)


def test_no_sign_in_is_refused_except_for_the_system_commands(demo_db: Database, capsys, tmp_path) -> None:
    db = url_of(demo_db)
    for args in (["stats", "--json"], ["incidents", "queue", "--json"], ["exchange", "list", "--json"],
                 ["whoami"], ["incidents", "policy", "--set", "grid", "9", "--json"]):
        rc, out, err = cli(capsys, "--db", db, *args)
        assert (rc, out) == (2, ""), args
        assert NOT_SIGNED_IN in err and "gridman login" in err, args
    rc, _out, err = cli(capsys, "--db", db, "--lang", "en", "stats")
    assert rc == 2 and "Sign in first" in err
    for args in (["db", "check", "--json"], ["db", "upgrade", "--json"], ["db", "init", "--json"]):
        rc, out, err = cli(capsys, "--db", db, *args)
        assert rc == 0, (args, err)
    if demo_db.dialect == "sqlite":  # the sample writes a new file whatever the backend under test
        rc, _out, err = cli(capsys, "sample", "--out", str(tmp_path / "new.sqlite"), "--scale", "demo")
        assert rc == 0, err
    ns = argparse.Namespace
    assert is_system_command(ns(command="users", users_command="add"))
    assert not is_system_command(ns(command="users", users_command="list"))
    assert not is_system_command(ns(command="db", db_command="restore"))


def test_a_claimed_name_or_a_wrong_password_is_refused_alike_and_leaves_no_trace(demo_db: Database, capsys,
                                                                                 tmp_path, pw) -> None:
    db = url_of(demo_db)
    disable(demo_db, "street")
    before = counts(demo_db)
    wrong = secret_file(tmp_path / "wrong.txt", "not-the-password")
    errs = []
    for pre in (["--as", "warden"],  # a name without its password (stdin is no terminal: no prompt)
                ["--as", "warden", "--password-file", str(wrong)],
                ["--as", "nobody", "--password-file", str(pw)],
                ["--as", "street", "--password-file", str(pw)]):  # disabled
        rc, out, err = cli(capsys, "--db", db, *pre, *REPORT)
        assert (rc, out) == (2, ""), pre
        errs.append(err)
    assert NOT_SIGNED_IN in errs[0]
    assert errs[1] == errs[2] == errs[3]  # wrong password, unknown name, disabled: one answer
    assert "nobody" not in errs[2] and "street" not in errs[3]
    assert counts(demo_db) == before


def test_an_empty_user_name_is_an_error_not_the_administrator(demo_db: Database, capsys) -> None:
    db = url_of(demo_db)
    before = counts(demo_db)
    for args in (REPORT, ["db", "check", "--json"]):
        rc, out, err = cli(capsys, "--db", db, "--as", "", *args)
        assert (rc, out) == (2, "") and "--as 需要一个用户名" in err
    assert counts(demo_db) == before


def test_the_audit_log_names_the_account_signed_in_by_session_and_by_password_file(demo_db: Database, capsys,
                                                                                  tmp_path, pw) -> None:
    db, sess = url_of(demo_db), str(tmp_path / "s.session")
    rc, _out, err = cli(capsys, "--db", db, "--session", sess, "login", "warden", "--password-file", str(pw))
    assert rc == 0, err
    rc, out, err = cli(capsys, "--db", db, "--session", sess, *REPORT)
    assert rc == 0, err
    rc, out2, err = cli(capsys, "--db", db, "--as", "community", "--password-file", str(pw), *REPORT)
    assert rc == 0, err
    import json

    by_session, by_password = json.loads(out)["incident_id"], json.loads(out2)["incident_id"]
    with demo_db.session() as s:
        def who(iid: int) -> set[str | None]:
            return set(s.scalars(select(AuditEntry.username).where(AuditEntry.table_name == "incidents",
                                                                   AuditEntry.row_id == iid)))
        assert who(by_session) == {"warden"} and who(by_password) == {"community"}
        logins = list(s.scalars(select(AuditEntry.username).where(AuditEntry.action == "login")))
        assert "warden" in logins and "community" in logins


def test_session_file_is_private_and_the_database_keeps_only_a_hash(demo_db: Database, capsys, tmp_path,
                                                                    pw) -> None:
    db = url_of(demo_db)
    rc, _out, err = cli(capsys, "--db", db, "login", "clerk", "--password-file", str(pw))  # default file
    assert rc == 0, err
    path = sessions.default_file(demo_db.url if demo_db.dialect != "sqlite" else
                                 "sqlite:///" + str(Path(db).resolve()))
    assert path.is_relative_to(config.data_dir())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    token = sessions.read_token(path)
    assert token and len(token) >= 40
    with demo_db.session() as s:
        hashes = list(s.scalars(select(CliSession.token_hash)))
    assert sessions.token_hash(token) in hashes and token not in hashes
    rc, out, err = cli(capsys, "--db", db, "whoami", "--json")  # without --as: the current session
    assert rc == 0 and '"username": "clerk"' in out, err
    loose = tmp_path / "loose.txt"
    loose.write_text(SAMPLE_PASSWORD + "\n")
    loose.chmod(0o644)
    rc, out, err = cli(capsys, "--db", db, "--as", "clerk", "--password-file", str(loose), "whoami")
    assert rc == 2 and "chmod 600" in err


def test_an_expired_session_and_a_disabled_account_are_refused(demo_db: Database, capsys, tmp_path, pw) -> None:
    db = url_of(demo_db)
    a, b = str(tmp_path / "a.session"), str(tmp_path / "b.session")
    assert cli(capsys, "--db", db, "--session", a, "login", "clerk", "--password-file", str(pw))[0] == 0
    assert cli(capsys, "--db", db, "--session", b, "login", "warden", "--password-file", str(pw))[0] == 0
    assert cli(capsys, "--db", db, "--session", a, "whoami")[0] == 0
    with demo_db.begin() as s:
        sessions.set_expiry(s, sessions.read_token(Path(a)) or "", utcnow() - timedelta(seconds=1))
    rc, out, err = cli(capsys, "--db", db, "--session", a, "whoami")
    assert (rc, out) == (2, "") and "登录已过期" in err
    disable(demo_db, "warden")
    rc, out, err = cli(capsys, "--db", db, "--session", b, "whoami")
    assert (rc, out) == (2, "") and NOT_SIGNED_IN in err


def test_logout_ends_the_session_and_is_audited(demo_db: Database, capsys, tmp_path, pw) -> None:
    db, sess = url_of(demo_db), tmp_path / "s.session"
    assert cli(capsys, "--db", db, "--session", str(sess), "login", "community", "--password-file", str(pw))[0] == 0
    token = sessions.read_token(sess)
    rc, out, err = cli(capsys, "--db", db, "--session", str(sess), "logout", "--json")
    assert rc == 0 and '"logged_out": true' in out, err
    assert not sess.exists()
    sessions.write_token(sess, token or "")  # a copy of the file kept from before is worth nothing
    rc, out, err = cli(capsys, "--db", db, "--session", str(sess), "whoami")
    assert rc == 2 and NOT_SIGNED_IN in err
    with demo_db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "logout", AuditEntry.username == "community")) == 1


def test_a_session_of_another_account_does_not_answer_for_a_claimed_name(demo_db: Database, capsys, tmp_path,
                                                                         pw) -> None:
    db, sess = url_of(demo_db), str(tmp_path / "s.session")
    assert cli(capsys, "--db", db, "--session", sess, "login", "warden", "--password-file", str(pw))[0] == 0
    rc, out, err = cli(capsys, "--db", db, "--session", sess, "--as", "admin", "whoami")
    assert rc == 2 and NOT_SIGNED_IN in err


def test_now_is_for_administrators_only(demo_db: Database, capsys, tmp_path, pw) -> None:
    db = url_of(demo_db)
    before = counts(demo_db)
    for args in ([*REPORT, "--now", "2026-11-01T09:00"], ["incidents", "escalate-overdue", "--now",
                                                          "2027-06-01T00:00", "--json"]):
        rc, out, err = cli(capsys, "--db", db, "--as", "warden", "--password-file", str(pw), *args)
        assert (rc, out) == (2, "") and "只有管理员可以使用 --now" in err, args
    assert counts(demo_db) == before
    rc, out, err = cli(capsys, "--db", db, "--as", "admin", "--password-file", str(pw), *REPORT,
                       "--now", "2026-11-01T09:00")
    assert rc == 0 and '"due_at": "2026-11-04T09:00:00"' in out, err


def test_a_database_url_is_never_shown_with_its_password(demo_db: Database, capsys, pw) -> None:
    if demo_db.dialect != "postgresql":
        pytest.skip("a URL with a password is a PostgreSQL one")
    secret = "Very$ecretPw9"
    url = make_url(demo_db.url).set(password=secret).render_as_string(hide_password=False)  # trust: ignored
    outputs = []
    for args in (["db", "init"], ["db", "init", "--json"], ["db", "check"], ["db", "check", "--json"],
                 ["db", "upgrade", "--json"], ["--as", "warden", "stats"],
                 ["--as", "admin", "--password-file", str(pw), "whoami"]):
        _rc, out, err = cli(capsys, "--db", url, *args)
        outputs.append(out + err)
    assert all(secret not in o for o in outputs)
    assert "***" in outputs[0] and "***" in outputs[3]
    log = config.log_dir() / "gridman.log"
    assert not log.exists() or secret not in log.read_text(encoding="utf-8")
