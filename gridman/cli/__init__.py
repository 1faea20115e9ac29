"""The command line: ``gridman [--db DB] [--as USER] COMMAND …``. With no command the GUI opens.

Commands act as the signed-in account (``gridman login``; see :mod:`gridman.cli.login_cmds`).

Each command module registers its sub-commands (``register(subparsers)``) and calls the same
services the GUI and the tests call. Commands with ``--json`` print exactly one JSON object on
stdout; errors go to stderr with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gridman import __version__
from gridman.cli.args import Parser

# Each module has register(subparsers). Add new command groups here.
COMMAND_MODULES = [
    "gridman.cli.db_cmds",
    "gridman.cli.login_cmds",
    "gridman.cli.sample_cmds",
    "gridman.cli.stats_cmds",
    "gridman.cli.geo_cmds",
    "gridman.cli.incidents_cmds",
    "gridman.cli.census_cmds",
    "gridman.cli.exchange_cmds",
    "gridman.cli.backup_cmds",
    "gridman.cli.users_cmds",
]


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="gridman",
        description="gridman 网格化管理 — 人 地 情 事 组织 registers and three-level mediation.",
    )
    p.add_argument("--version", action="version", version=f"gridman {__version__}")
    p.add_argument("--db", help="database file or SQLAlchemy URL (default: $GRIDMAN_DB or the data directory)")
    p.add_argument("--as", dest="as_user", metavar="USER",
                   help="sign in as USER: password from --password-file or a prompt (default: the session of "
                        "'gridman login')")
    p.add_argument("--password-file", metavar="FILE", help="USER's password: the first line of FILE (chmod 600)")
    p.add_argument("--session", metavar="FILE",
                   help="session file of 'gridman login' (default: $GRIDMAN_SESSION or one per database)")
    p.add_argument("--lang", default=None, help="zh_CN (default) or en")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from gridman.gui.app import run_gui

        return run_gui(db=args.db, lang=args.lang)
    from gridman.cli.common import run_command

    return run_command(args)
