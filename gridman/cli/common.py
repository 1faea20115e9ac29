"""Shared plumbing of CLI commands: open the database, find the acting user, print results."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from typing import Any

from gridman.core import config, tasks
from gridman.core.db import Database, SchemaError, open_database
from gridman.core.services.errors import GridmanError
from gridman.core.services.permissions import Actor
from gridman.core.tasks import TaskState

log = logging.getLogger("gridman.cli")


class Context:
    """What a command gets: the parsed args, the database (opened lazily), the acting user."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._db: Database | None = None
        self._actor: Actor | None = None

    @property
    def lang(self) -> str:
        return self.args.lang or "zh_CN"

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = open_database(self.args.db, create=False)  # a typo never creates a database
        return self._db

    @property
    def actor(self) -> Actor:
        if self._actor is None:  # who signed in (gridman.cli.login_cmds); the system account only if allowed
            from gridman.cli.login_cmds import signed_in_actor

            self._actor = signed_in_actor(self, required=False)
        return self._actor

    @contextmanager
    def progress(self) -> Iterator[TaskState]:
        """The progress-and-cancel object of a long command (:func:`tasks.printer`): a progress
        line on stderr when it is a terminal and the output is text, the line ended afterwards so
        the result starts on a line of its own."""
        quiet = self.json or not sys.stderr.isatty()
        try:
            yield tasks.printer(quiet=quiet)
        finally:
            if not quiet:
                print(file=sys.stderr)

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()

    def out(self, obj: Any, text: str | Callable[[], str] | None = None) -> None:
        """Print the result: one JSON object with --json, else the human text."""
        if self.json:
            print(json.dumps(to_jsonable(obj), ensure_ascii=False, sort_keys=False))
        else:
            t = text() if callable(text) else text
            print(t if t is not None else json.dumps(to_jsonable(obj), ensure_ascii=False, indent=2))


def to_jsonable(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if hasattr(obj, "__fspath__"):
        return str(obj)
    return obj


def add_json(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return p


def _setup_logging() -> None:
    try:
        handler: logging.Handler = logging.FileHandler(config.log_dir() / "gridman.log", encoding="utf-8")
    except OSError:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("gridman")
    if not root.handlers:
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def run_command(args: argparse.Namespace) -> int:
    _setup_logging()
    ctx = Context(args)
    lang = ctx.lang
    try:
        from gridman.cli.login_cmds import is_system_command, sign_in

        if not is_system_command(args):
            _ = ctx.db  # a --db that is missing, a folder or not gridman's is said first: no sign-in can help
        sign_in(ctx)  # a command that needs an account and has no valid sign-in is refused before it runs
        rc = args.func(ctx)
        return int(rc or 0)
    except GridmanError as exc:
        print(f"错误：{exc.text(lang)}" if not lang.startswith("en") else f"error: {exc.text(lang)}", file=sys.stderr)
        return 2
    except SchemaError as exc:
        print(str(exc), file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("已取消 / cancelled", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - last resort: the user gets a message, the log the traceback
        log.error("command failed: %s\n%s", exc, traceback.format_exc())
        logfile = config.log_dir() / "gridman.log"  # the user gets no raw exception text: it is in the log
        print(f"发生意外错误，详情见日志 {logfile}" if not lang.startswith("en")
              else f"unexpected error; see the log {logfile}", file=sys.stderr)
        return 1
    finally:
        ctx.close()
