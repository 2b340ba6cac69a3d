"""`taskorch.testing`, the public fakes: documented as exported, runnable as documented, free of
pytest, and the only place src/ and bench/ get test helpers from (never tests/)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

import taskorch.testing
from taskorch.testing import FakeClock, FakeExecutor, FakeGateway, Gate, in_memory_orchestrator
from tests.downstream_peers import REPO_ROOT

DOCS = REPO_ROOT / "docs" / "testing.md"
HEADING = "## Testing your code against taskorch"


def _section() -> str:
    text = DOCS.read_text()
    start = text.index(HEADING)
    end = text.find("\n## ", start + len(HEADING))
    return text[start : end if end != -1 else len(text)]


def test_the_docs_table_lists_exactly_the_exports_with_their_modules() -> None:
    rows = re.findall(r"^\| `(\w+)` \| `([\w.]+)` \|", _section(), re.M)
    assert sorted(name for name, _ in rows) == sorted(taskorch.testing.__all__)
    assert len(rows) == len(set(rows))
    for name, module in rows:
        __import__(module)
        assert getattr(sys.modules[module], name) is getattr(taskorch.testing, name), name


def test_the_docs_example_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", _section(), re.M | re.S)
    assert len(blocks) == 1
    script = tmp_path / "example.py"
    script.write_text(blocks[0])
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_the_package_does_not_import_pytest() -> None:
    # A fresh interpreter: this one has pytest loaded already.
    code = "import sys, taskorch.testing, taskorch.testing.peer.__main__; print('pytest' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "False"
    package = REPO_ROOT / "src" / "taskorch" / "testing"
    assert not [str(p) for p in package.rglob("*.py") if "pytest" in _imported(p)]


def _imported(path: Path) -> set[str]:
    """The top-level packages a module imports (at any depth in its code)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_nothing_in_src_or_bench_imports_tests() -> None:
    files = [p for top in ("src", "bench") for p in (REPO_ROOT / top).rglob("*.py")]
    assert files
    offenders = [str(p.relative_to(REPO_ROOT)) for p in files if "tests" in _imported(p)]
    assert offenders == []


def test_the_package_ships_its_type_information() -> None:
    assert (REPO_ROOT / "src" / "taskorch" / "py.typed").is_file()


@pytest.mark.anyio
async def test_the_in_memory_orchestrator_runs_on_the_fakes_it_is_given(tmp_path: Path) -> None:
    executor, gateway, clock = FakeExecutor(), FakeGateway(), FakeClock(start=1_000_000.0)
    gateway.add_tool("files", "read", {"type": "object"}, handler=Gate())
    limits = {"limits": {"max_concurrent_runs": 1}}
    async with in_memory_orchestrator(
        tmp_path, executor=executor, gateway=gateway, clock=clock, settings=limits
    ) as memory:
        assert (memory.executor, memory.gateway, memory.clock) == (executor, gateway, clock)
        assert memory.orchestrator.settings.limits.max_concurrent_runs == 1
        listed = await memory.client.call_tool("list_downstream_tools", {})
        assert listed.structured_content is not None
        assert listed.structured_content["servers"][0]["tools"][0]["name"] == "read"
        arguments = {"prompt": "p", "work_directory": str(memory.root), "execution_mode": "claude_code"}
        created = await memory.client.call_tool("create_task", arguments)
        assert created.structured_content is not None
        task = created.structured_content["task"]
        assert task["created_at"].startswith("1970-01-12")  # the fake clock's time
        await memory.client.call_tool("execute_task", {"task_id": task["id"]})
        with anyio.fail_after(10):
            await executor.wait_until(lambda: task["id"] in executor.live)
        executor.release(task["id"])
        with anyio.fail_after(10):
            await executor.wait_until(lambda: task["id"] in executor.finished)
