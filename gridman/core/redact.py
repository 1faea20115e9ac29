"""Secrets never printed: a database URL as it may be shown (output, logs, error messages)."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(://[^/@:]*):[^/]*@")


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (``postgresql://u:***@host/db``); a file path
    or a URL without a password is returned unchanged. Every place that shows a URL calls this."""
    return _USERINFO.sub(r"\1:***@", str(url))
