from __future__ import annotations

import os
import traceback
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TypedDict

import pluggy
import pytest
from hypothesis import HealthCheck, Phase, settings


class _FuzzSettings(TypedDict):
    phases: list[Phase]
    deadline: None
    suppress_health_check: list[HealthCheck]
    print_blob: bool


# The property-based suites run a fixed seed with bounded examples by default, so a run is
# repeatable and quick; `--hypothesis-profile long` (scripts/fuzz_mcp.sh) explores at random.
# The fuzz suites drive a live server whose state moves on between examples, so a failing
# example may not replay exactly: report it as found rather than shrink it.
_FUZZ: _FuzzSettings = {
    "phases": [Phase.explicit, Phase.generate],
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}
settings.register_profile("default", max_examples=300, derandomize=True, database=None, **_FUZZ)
settings.register_profile("long", max_examples=20_000, derandomize=False, **_FUZZ)
settings.load_profile("default")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The `taskorch` command's environment for one test: `tmp_path` as its home (so the default
    allowed root, config and data directories), and no TASKORCH_* variables."""
    for name in list(os.environ):
        if name.startswith("TASKORCH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / ".local" / "share"))
    return tmp_path


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport]]:
    """A failure inside nested task groups is printed past Python's depth of ten groups, which
    hides its cause: add each innermost exception to the report as its own section."""
    outcome = yield
    if call.excinfo is None or not isinstance(call.excinfo.value, BaseExceptionGroup):
        return
    report = outcome.get_result()
    for n, leaf in enumerate(_leaves(call.excinfo.value), 1):
        text = "".join(traceback.format_exception(leaf))
        report.sections.append((f"innermost exception {n}", text[-4000:]))
