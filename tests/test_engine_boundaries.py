"""The engine depends on protocols only: no concrete store, downstream pool or planner.

Which of those a process uses is decided by the composition root (`taskorch.app`). Checked on
the engine's source with `ast`, so an import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import taskorch.engine

ENGINE = Path(taskorch.engine.__file__).parent

# Modules the engine may import from these packages: their protocols and shared vocabulary.
ALLOWED = {
    "taskorch.storage": {"taskorch.storage.base"},
    "taskorch.downstream": {"taskorch.downstream.base"},
    "taskorch.planning": {"taskorch.planning.base", "taskorch.planning.explicit"},
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every module `path` imports, `from x import y` giving `x` and `x.y`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}:{node.lineno}: use absolute imports"
            module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def forbidden(module: str) -> bool:
    for package, allowed in ALLOWED.items():
        if module == package:
            return True  # the package itself re-exports its implementations (e.g. MemoryStore)
        if module.startswith(package + "."):
            return not any(module == a or module.startswith(a + ".") for a in allowed)
    return False


def engine_modules() -> list[Path]:
    return sorted(ENGINE.rglob("*.py"))


@pytest.mark.parametrize("path", engine_modules(), ids=lambda p: p.name)
def test_the_engine_imports_no_concrete_store_pool_or_planner(path: Path) -> None:
    bad = [f"{path.name}:{line}: {module}" for line, module in imported_modules(path) if forbidden(module)]
    assert not bad, "the engine must depend only on protocols; build these in taskorch.app:\n" + "\n".join(
        bad
    )


def test_the_check_sees_what_it_must_refuse() -> None:
    assert forbidden("taskorch.storage")
    assert forbidden("taskorch.storage.sqlite")
    assert forbidden("taskorch.storage.postgres")
    assert forbidden("taskorch.storage.memory")
    assert forbidden("taskorch.downstream.pool")
    assert forbidden("taskorch.planning.claude")
    assert not forbidden("taskorch.storage.base")
    assert not forbidden("taskorch.storage.base.Store")
    assert not forbidden("taskorch.downstream.base")
    assert not forbidden("taskorch.planning.base")
    assert len(engine_modules()) >= 5
