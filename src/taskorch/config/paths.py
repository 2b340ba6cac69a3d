"""Per-user directories: where the config file and the data (database, logs) live by default."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

__all__ = ["default_config_path", "default_data_dir"]


def _user_dir(kind: Literal["data", "config"], env: Mapping[str, str]) -> Path:
    home = Path(env.get("HOME") or Path.home())
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "taskorch"
    if sys.platform == "win32":
        base = env.get("LOCALAPPDATA") if kind == "data" else env.get("APPDATA")
        return Path(base or home) / "taskorch"
    xdg = env.get("XDG_DATA_HOME" if kind == "data" else "XDG_CONFIG_HOME")
    default = home / (".local/share" if kind == "data" else ".config")
    return Path(xdg or default) / "taskorch"


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Per-user data directory (XDG on Linux, Application Support on macOS, LOCALAPPDATA on Windows)."""
    return _user_dir("data", os.environ if env is None else env)


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """`config.toml` in the per-user config directory (XDG_CONFIG_HOME, ~/.config/taskorch on Linux)."""
    return _user_dir("config", os.environ if env is None else env) / "config.toml"
