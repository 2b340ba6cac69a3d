"""Containments for tests: each one this host allows, built and closed around a test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from taskorch.config import load_settings
from taskorch.errors import ConfigError
from taskorch.executors.containment import Containment, open_containment

__all__ = ["CONTAINMENTS", "daemon_pid", "open_test_containment"]

CONTAINMENTS = ["cgroup", "subreaper"]
"""The containments a run can have beyond its process group; tests run over each."""


@contextmanager
def open_test_containment(mode: str) -> Iterator[Containment]:
    """The containment `runs.containment = mode` gives, for the length of the block; skips the
    test where the host does not allow it. Closing switches the subreaper off again, so the
    rest of the test session runs as before."""
    settings = load_settings(env={}, overrides={"runs": {"containment": mode}})
    try:
        containment = open_containment(settings.runs.containment)
    except ConfigError as exc:
        pytest.skip(str(exc))
    try:
        yield containment
    finally:
        containment.close()


def daemon_pid(record: Path) -> int:
    """The pid of the `sleep` the fake CLI's `daemon` scenarios left behind (from its record)."""
    pid: int = json.loads(record.read_text())["daemon"]
    return pid
