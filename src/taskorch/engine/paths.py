"""Checking caller-given work directories against the allowed roots."""

from __future__ import annotations

import os
from collections.abc import Sequence

from taskorch.domain.paths import is_at_or_below
from taskorch.errors import InvalidArgument, PathNotAllowed

__all__ = ["resolve_scope", "resolve_work_directory"]


def resolve_work_directory(raw: str, allowed_roots: Sequence[str]) -> str:
    """Return `raw` resolved (symlinks followed, `..` removed) if it lies under an allowed root.

    The comparison is by path components on the resolved path, so `/home/user-evil` is not
    under `/home/user`, and a symlink inside a root that points outside it is refused. The
    directory need not exist yet (a worker on another machine may own it).
    Raises `InvalidArgument` for NUL bytes or a relative path, `PathNotAllowed` otherwise.
    """
    if "\x00" in raw:
        raise InvalidArgument("work_directory contains a NUL byte; pass a plain absolute path")
    expanded = raw.strip()
    if not os.path.isabs(expanded):
        example = allowed_roots[0] if allowed_roots else "/home/me/project"
        raise InvalidArgument(f"work_directory must be an absolute path, got {raw!r}; e.g. {example}")
    try:
        resolved = os.path.realpath(expanded)
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"work_directory {raw!r} cannot be resolved: {exc}") from exc
    for root in allowed_roots:
        if is_at_or_below(resolved, root):
            return resolved
    roots = ", ".join(allowed_roots) or "(none configured)"
    raise PathNotAllowed(
        f"work_directory {raw!r} (resolved: {resolved}) is outside the allowed roots: {roots}. "
        "Use a directory under one of them, or add a root to security.allowed_roots in the server config."
    )


def resolve_scope(path: str, name: str, roots: Sequence[str]) -> str:
    """Resolve a directory to search at or below; refuse one no task can be in.

    Such a directory must be inside an allowed root or above one (a worker may ask for `/`).
    """
    raw = path.strip()
    if "\x00" in raw:
        raise InvalidArgument(f"{name} contains a NUL byte; pass a plain absolute path")
    if not os.path.isabs(raw):
        example = roots[0] if roots else "/home/me/project"
        raise InvalidArgument(f"{name} must be an absolute directory path, e.g. {example}")
    resolved = os.path.realpath(raw)
    if any(is_at_or_below(resolved, root) or is_at_or_below(root, resolved) for root in roots):
        return resolved
    raise PathNotAllowed(
        f"{name} {path!r} (resolved: {resolved}) is outside the allowed roots: {', '.join(roots)}; "
        "no task can be there. Use a directory under one of them."
    )
