"""Where gridman keeps its files. ``GRIDMAN_DATA_DIR`` overrides the platform's user data dir."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "gridman"


def data_dir() -> Path:
    env = os.environ.get("GRIDMAN_DATA_DIR")
    if env:
        p = Path(env)
    else:
        from platformdirs import user_data_dir

        p = Path(user_data_dir(APP_NAME, appauthor=False))
    p.mkdir(parents=True, exist_ok=True)
    return p


def default_db_path() -> Path:
    return data_dir() / "gridman.sqlite"


def log_dir() -> Path:
    p = data_dir() / "logs"
    p.mkdir(parents=True, exist_ok=True)
    return p
