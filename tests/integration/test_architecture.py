"""Import rules between taskorch's packages (docs/architecture.md), checked on the source.

Every module under src/taskorch is parsed with `ast` (scripts/import_graph.py); nothing is
imported. A new package needs a line in ALLOWED; a new breach fails here, and so does a listed
exception that no longer occurs, so KNOWN_EXCEPTIONS stays the true list of what is left to fix.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("import_graph", module)
    spec.loader.exec_module(module)
    return module


graph = _load_script()

_FOUNDATION = {"config", "domain", "errors", "problems", "taskorch", "wording"}
_ALL = {
    "__main__", "app", "cli", "config", "domain", "downstream", "engine", "errors", "executors",
    "planning", "problems", "server", "storage", "taskorch", "tool_profiles", "wording", "worker",
    "worktrees",
}  # fmt: skip

ALLOWED: dict[str, set[str]] = {
    "wording": set(),
    "errors": {"wording"},
    "problems": {"errors"},
    "taskorch": set(),
    "tool_profiles": {"errors", "problems"},
    "domain": {"errors", "problems"},
    "config": {"domain", "errors", "problems", "tool_profiles"},
    "storage": _FOUNDATION,
    "executors": _FOUNDATION,
    "downstream": _FOUNDATION,
    "worktrees": _FOUNDATION,
    "planning": _FOUNDATION | {"downstream", "executors"},
    "engine": _FOUNDATION | {"downstream", "executors", "planning", "storage", "worktrees"},
    "server": _FOUNDATION | {"downstream", "engine", "executors", "storage", "tool_profiles"},
    # The composition root and the entry points; only they may import `app`.
    "app": _ALL - {"__main__", "app", "cli", "worker"},
    "worker": _ALL - {"__main__", "cli", "server", "worker"},
    "cli": _ALL - {"__main__", "cli"},
    # The public fakes for tests (docs/testing.md): they stand in for parts of every layer, and
    # nothing in taskorch imports them.
    "testing": _ALL - {"__main__", "app", "cli", "worker"},
    "__main__": {"cli"},
}
"""Package -> the other packages its modules may import."""

PROTOCOL_ONLY = {"engine", "planning"}
"""These reach the component packages (graph.COMPONENTS) only through a `base` (protocol) module."""

KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()
"""(importing module, imported module) pairs that break a rule today."""


def _breaks(module: str, target: str) -> bool:
    own, other = graph.package_of(module), graph.package_of(target)
    if other == own:
        return False
    if other not in ALLOWED.get(own, set()):
        return True
    return own in PROTOCOL_ONLY and other in graph.COMPONENTS and not target.endswith(".base")


def _violations() -> set[tuple[str, str]]:
    return {(m, t) for m, targets in graph.module_imports().items() for t in targets if _breaks(m, t)}


def test_every_package_has_a_rule() -> None:
    packages = set(graph.package_graph(graph.module_imports()))
    assert packages <= set(ALLOWED), f"add a rule to ALLOWED for {sorted(packages - set(ALLOWED))}"


def test_no_module_breaks_an_import_rule() -> None:
    new = _violations() - KNOWN_EXCEPTIONS
    assert not new, "imports that break docs/architecture.md's rules:\n" + "\n".join(
        f"  {m} imports {t}" for m, t in sorted(new)
    )


def test_every_known_exception_still_occurs() -> None:
    gone = KNOWN_EXCEPTIONS - _violations()
    assert not gone, "fixed, so remove from KNOWN_EXCEPTIONS (and docs/architecture.md):\n" + "\n".join(
        f"  {m} imports {t}" for m, t in sorted(gone)
    )


def test_the_picture_in_the_docs_is_the_code_s() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    _, _, rest = text.partition(graph.START)
    shown, found, _ = rest.partition(graph.END)
    assert found, "docs/architecture.md lost its import-graph markers"
    expected = f"\n```text\n{graph.render(graph.module_imports())}```\n"
    assert shown == expected, "the import graph changed: run `python scripts/import_graph.py --write`"


@pytest.mark.parametrize(
    ("source", "imported"),
    [
        ("from taskorch.storage import postgres_plans\n", "taskorch.storage.postgres_plans"),
        ("from taskorch.storage import Store\n", "taskorch.storage"),
        ("def f():\n    import taskorch.engine.queue\n", "taskorch.engine.queue"),
        ("from . import base\n", "taskorch.storage.base"),
    ],
)
def test_the_reader_sees_every_form_of_import(tmp_path: Path, source: str, imported: str) -> None:
    for name in ("storage/__init__.py", "storage/base.py", "storage/postgres_plans.py", "engine/queue.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "storage" / "probe.py").write_text(source)
    assert graph.module_imports(tmp_path)["taskorch.storage.probe"] == {imported}
