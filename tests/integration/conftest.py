from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.netns import CLAUDE, netns_problem

INSTALL_HINT = "install it with `npm ci` in the repository root (the version is pinned in package.json)"


@pytest.fixture(scope="session")
def claude_cli() -> Path:
    """The pinned real CLI, usable inside a network namespace; else skip (fail when CI is set)."""
    problems = []
    if not os.access(CLAUDE, os.X_OK):
        problems.append(f"the Claude Code CLI is missing at {CLAUDE}: {INSTALL_HINT}")
    if (netns := netns_problem()) is not None:
        problems.append(netns)
    if problems:
        message = "; ".join(problems)
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the real-CLI tests: {message}")
        pytest.skip(message)
    return CLAUDE


def preset_cli(name: str, package: str) -> Path:
    """The pinned real `name` CLI from npm `package`, usable in a network namespace; else skip
    (fail when CI is set)."""
    from tests.integration.preset_scenario import CLIS

    problems = []
    if not os.access(CLIS[name], os.X_OK):
        problems.append(f"{package} is missing at {CLIS[name]}: {INSTALL_HINT}")
    if (netns := netns_problem()) is not None:
        problems.append(netns)
    if problems:
        message = "; ".join(problems)
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the real-CLI tests: {message}")
        pytest.skip(message)
    return CLIS[name]


@pytest.fixture(scope="session")
def codex_cli() -> Path:
    return preset_cli("codex", "the Codex CLI (@openai/codex)")


@pytest.fixture(scope="session")
def gemini_cli() -> Path:
    return preset_cli("gemini", "the Gemini CLI (@google/gemini-cli)")


@pytest.fixture(scope="session")
def opencode_cli() -> Path:
    return preset_cli("opencode", "opencode (opencode-ai)")
