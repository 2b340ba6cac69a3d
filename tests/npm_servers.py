"""Real MCP servers from the npm registry, pinned in package.json (`npm ci` installs them).

Nothing is fetched at test time. Without node_modules a test that needs them skips, except
under CI (env `CI` set), where a missing install is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.downstream_peers import REPO_ROOT

__all__ = ["NPM_BIN", "npm_bin"]

NPM_BIN = REPO_ROOT / "node_modules" / ".bin"


def npm_bin(name: str) -> Path:
    """The installed executable `name` (e.g. mcp-server-filesystem); skips or fails without it."""
    executable = NPM_BIN / name
    if not executable.exists():
        message = f"{executable} is missing: run `npm ci --no-audit --no-fund` in {REPO_ROOT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return executable
