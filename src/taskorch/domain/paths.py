"""Path rules on already-resolved absolute paths (pure string logic, no file system)."""

from __future__ import annotations

__all__ = ["is_at_or_below", "overlaps", "subtree_prefix"]


def subtree_prefix(root: str) -> str:
    """The string every path strictly below `root` starts with (`/a/b` -> `/a/b/`, `/` -> `/`)."""
    return root if root.endswith("/") else root + "/"


def is_at_or_below(path: str, root: str) -> bool:
    """Whether `path` is `root` or lies below it, compared by components.

    `/home/user-evil` is not below `/home/user`; both arguments must be normalised absolute
    paths (no `..`, no trailing slash except for `/` itself).
    """
    return path == root or path.startswith(subtree_prefix(root))


def overlaps(a: str, b: str) -> bool:
    """Whether one of two normalised absolute paths is the other or lies below it.

    Work in either could touch files of the other, so runs in them may not share a slot.
    """
    return is_at_or_below(a, b) or is_at_or_below(b, a)
