"""The CLI's last-resort error handler: a message in the user's language and the log's place, never
the raw exception text (that goes to the log)."""

from __future__ import annotations

import argparse

import pytest

from gridman.cli.common import run_command


def _boom(_ctx: object) -> int:
    raise RuntimeError("internal detail: table xyz missing")


@pytest.mark.parametrize(("lang", "words"), [(None, "发生意外错误"), ("en", "unexpected error")])
def test_an_unexpected_error_shows_no_raw_exception_text(lang: str | None, words: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(command="sample", as_user=None, lang=lang, db=None, func=_boom)  # needs no sign-in
    assert run_command(args) == 1
    err = capsys.readouterr().err
    assert words in err and "gridman.log" in err
    assert "internal detail" not in err
