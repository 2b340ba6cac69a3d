"""Every module declares `__all__`, and every name in it exists."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import taskorch


def _modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(taskorch.__path__, prefix="taskorch.")
        if not info.name.endswith("__main__")
    )


@pytest.mark.parametrize("name", _modules())
def test_module_exports_only_names_it_defines(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        own = [
            n
            for n, v in vars(module).items()
            if not n.startswith("_") and getattr(v, "__module__", None) == name
        ]
        assert not own, f"{name} defines public names {own} but no __all__"
        return
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
