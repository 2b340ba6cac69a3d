"""Print taskorch's package import graph, drawn in layers, read from the source itself.

    python scripts/import_graph.py            # print the picture
    python scripts/import_graph.py --write    # put it into docs/architecture.md

Every `import` and `from ... import` of a taskorch module counts, wherever it stands (inside a
function, under TYPE_CHECKING): a dependency is a dependency. A package's layer is the length of
the longest chain of packages below it, so each package imports only from lower lines.
tests/integration/test_architecture.py checks the import rules on the same data, and that the picture in
docs/architecture.md is what this prints.
"""

from __future__ import annotations

import argparse
import ast
import sys
import textwrap
from pathlib import Path

__all__ = ["COMPONENTS", "module_imports", "package_graph", "package_of", "render", "write_doc"]

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "taskorch"
DOC = ROOT / "docs" / "architecture.md"
START = "<!-- import-graph: start (scripts/import_graph.py --write) -->"
END = "<!-- import-graph: end -->"

COMPONENTS = ("downstream", "executors", "planning", "storage", "worktrees")
"""Packages that the engine (and planning) should reach only through a protocol (`base`) module."""


def _module_name(path: Path, src: Path) -> str:
    parts = ("taskorch", *path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str, src: Path) -> bool:
    relative = Path(*name.split(".")[1:])
    return (src / relative).with_suffix(".py").is_file() or (src / relative / "__init__.py").is_file()


def module_imports(src: Path = SRC) -> dict[str, set[str]]:
    """Each module under `src` -> the taskorch modules it imports (`from pkg import mod` is `pkg.mod`)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(src.rglob("*.py")):
        name = _module_name(path, src)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.add(sub if _is_module(sub, src) else base)
        graph[name] = {m for m in found if m == "taskorch" or m.startswith("taskorch.")}
    return graph


def package_of(module: str) -> str:
    """`taskorch.engine.queue` -> `engine`; each top-level module is a package of its own."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "taskorch"  # the root: `__version__`


def package_graph(imports: dict[str, set[str]]) -> dict[str, set[str]]:
    """Package -> the other packages it imports (every package is a key)."""
    graph: dict[str, set[str]] = {package_of(m): set() for m in imports}
    for module, targets in imports.items():
        own = package_of(module)
        graph[own].update(package_of(t) for t in targets if package_of(t) != own)
    return graph


def _layers(graph: dict[str, set[str]]) -> dict[str, int]:
    layer: dict[str, int] = {}

    def depth(package: str, path: tuple[str, ...]) -> int:
        if package in path:
            raise ValueError(f"packages import each other in a cycle: {' -> '.join((*path, package))}")
        if package not in layer:
            layer[package] = 1 + max((depth(d, (*path, package)) for d in graph[package]), default=-1)
        return layer[package]

    for package in graph:
        depth(package, ())
    return layer


def render(imports: dict[str, set[str]]) -> str:
    """The picture: packages by layer, top first, each with what it imports."""
    graph = package_graph(imports)
    layer = _layers(graph)
    width = max(len(p) for p in graph)
    lines = []
    for level in range(max(layer.values()), -1, -1):
        for i, package in enumerate(sorted(p for p in graph if layer[p] == level)):
            tag = f"[{level}]" if i == 0 else ""
            targets = ", ".join(sorted(graph[package]))
            lines.append(f"{tag:<4} {package:<{width}}{'  -> ' + targets if targets else ''}".rstrip())
    lines.append("")
    lines.append("engine and planning reach the components through (* = not a protocol module):")
    for package in ("engine", "planning"):
        reached = sorted(
            {
                t.removeprefix("taskorch.")
                for m, targets in imports.items()
                if package_of(m) == package
                for t in targets
                if package_of(t) in COMPONENTS and package_of(t) != package
            }
        )
        shown = [r if r.endswith(".base") else f"{r}*" for r in reached]
        lines.extend(
            textwrap.wrap(", ".join(shown), 96, initial_indent=f"  {package:<9} ", subsequent_indent=" " * 12)
        )
    return "\n".join(lines) + "\n"


def write_doc(picture: str, doc: Path = DOC) -> None:
    """Replace the picture between the markers in `doc`."""
    text = doc.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    doc.write_text(f"{head}{START}\n```text\n{picture}```\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"update {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    picture = render(module_imports())
    if args.write:
        write_doc(picture)
    else:
        sys.stdout.write(picture)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
