"""The README tells a new user what the repository itself requires: checked against its files."""

from __future__ import annotations

import json
import re

from tests.downstream_peers import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


NODE_20 = (20, 20, 2)  # the Node 20 on the project's machines

_COMPARATOR = re.compile(r"(>=|<=|>|<|\^|~|=)?\s*v?(\d+)(?:\.(\d+|x))?(?:\.(\d+|x))?")


def _allows(range_: str, version: tuple[int, int, int]) -> bool:
    """Whether an npm `engines` range allows `version` (the forms lock files use)."""
    for alternative in range_.split("||"):
        ok = True
        for op, *parts in _COMPARATOR.findall(alternative):
            bound = tuple(int(p) if p.isdigit() else 0 for p in parts)
            exact = sum(p.isdigit() for p in parts)
            match op:
                case ">=":
                    ok &= version >= bound
                case ">":
                    ok &= version > bound
                case "<=":
                    ok &= version <= bound
                case "<":
                    ok &= version < bound
                case "^" | "~":
                    ok &= version >= bound and version[0] == bound[0]
                case _:
                    ok &= version[:exact] == bound[:exact]
        if ok and alternative.strip():
            return True
    return False


def _packages_requiring_node_above_20() -> dict[str, str]:
    """Installed packages (from package-lock.json) whose `engines.node` excludes Node 20."""
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text())
    found = {}
    for path, info in lock["packages"].items():
        engines = info.get("engines")
        node = engines.get("node") if isinstance(engines, dict) else None
        if node and not _allows(node, NODE_20):
            found[path.removeprefix("node_modules/")] = node
    return found


def test_the_readme_names_each_package_that_needs_a_newer_node_and_the_version() -> None:
    needing = _packages_requiring_node_above_20()
    assert needing, "no package needs more than Node 20 any more: update the README's Node paragraph"
    for name, node in needing.items():
        assert f"`{name}`" in README, name
        assert f"`node {node}`" in README, node
    assert "Node 22 or newer" in README
    assert "EBADENGINE" in README


def test_the_readme_says_how_long_the_tests_take() -> None:
    assert re.search(r"full `pytest` run takes about \d+ minutes on a 2-core machine", README)


def test_the_troubleshooting_page_is_linked_and_covers_each_first_hour_problem() -> None:
    assert "](docs/troubleshooting.md)" in README
    page = (REPO_ROOT / "docs" / "troubleshooting.md").read_text()
    headings = re.findall(r"^## (.+)$", page, re.M)
    assert headings == [
        "My task never runs",
        "The plan fails to connect",
        "The client says the tool list is too large",
        '"database is locked", and the other store faults',
    ]
    for kind in ("store_busy", "disk_full", "read_only", "corrupt", "store_unavailable"):
        assert f"**`{kind}`**" in page, kind
    for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page):
        assert (REPO_ROOT / "docs" / link).is_file(), link
