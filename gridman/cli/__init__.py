"""The command line: ``gridman [--db DB] [--as USER] COMMAND …``. With no command the GUI opens.

Each command module registers its sub-commands (``register(subparsers)``) and calls the same
services the GUI and the tests call. Commands with ``--json`` print exactly one JSON object on
stdout; errors go to stderr with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gridman import __version__

# Each module has register(subparsers). Add new command groups here.
COMMAND_MODULES = [
    "gridman.cli.db_cmds",
    "gridman.cli.sample_cmds",
    "gridman.cli.stats_cmds",
    "gridman.cli.geo_cmds",
    "gridman.cli.incidents_cmds",
    "gridman.cli.census_cmds",
    "gridman.cli.exchange_cmds",
    "gridman.cli.users_cmds",
]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gridman",
        description="gridman 网格化管理 — 人 地 情 事 组织 registers and three-level mediation.",
    )
    p.add_argument("--version", action="version", version=f"gridman {__version__}")
    p.add_argument("--db", help="database file or SQLAlchemy URL (default: $GRIDMAN_DB or the data directory)")
    p.add_argument("--as", dest="as_user", metavar="USER", help="act as this user (default: built-in administrator)")
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
