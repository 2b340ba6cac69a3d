"""Where the repository is, for tests that run its files (README, examples, npm packages).

The downstream peers themselves (`build_peer`, `serve_streamable_http`, `stdio_peer`, ...) are
public, in `taskorch.testing`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parent.parent
