"""`TASKORCH_*` environment variables as nested settings data, noting which variable set each key."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Final

from taskorch.errors import ConfigError

__all__ = ["ENV_PREFIX", "Sources", "check_env_names", "env_overrides"]

ENV_PREFIX = "TASKORCH_"

_SHORTCUTS = {"DB": ("storage", "url"), "TOKEN": ("security", "token")}
_LIST_FIELDS = {
    ("security", "allowed_roots"),
    ("server", "allowed_hosts"),
    ("server", "allowed_origins"),
    ("claude_code", "extra_args"),
    ("claude_code", "env_passthrough"),
    ("worktrees", "check_env_passthrough"),
}

# Where each key came from, for error messages: (section, field) -> "TASKORCH_..." / file / flags.
Sources = dict[tuple[str, ...], str]


def _parse_list(value: str, separator: str) -> list[str]:
    """A list from one environment value: a JSON array, or items split on `separator`."""
    text = value.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON array of strings: {exc}") from exc
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError("expected a JSON array of strings")
        return [i for i in items if i]
    return [p.strip() for p in text.split(separator) if p.strip()]


_TABLES_ONLY: Final = {"downstream": "downstream servers", "planners": "planners"}


def env_overrides(env: Mapping[str, str], sources: Sources) -> dict[str, dict[str, Any]]:
    """`TASKORCH_<SECTION>__<KEY>` variables (and the shortcuts) as nested settings data.

    An empty value counts as unset. Names without `__` other than the shortcuts are not ours
    to judge and are ignored; an unknown section or key is rejected later, by name. A full
    name wins over its shortcut (`TASKORCH_SECURITY__TOKEN` over `TASKORCH_TOKEN`,
    `TASKORCH_STORAGE__URL` over `TASKORCH_DB`): shortcuts are read first.
    """
    out: dict[str, dict[str, Any]] = {}
    shortcuts_first = sorted(
        env.items(), key=lambda item: (item[0][len(ENV_PREFIX) :] not in _SHORTCUTS, item)
    )
    for name, value in shortcuts_first:
        if not name.startswith(ENV_PREFIX) or not value.strip():
            continue
        key = name[len(ENV_PREFIX) :]
        if key in _SHORTCUTS:
            section, field = _SHORTCUTS[key]
        elif "__" in key:
            section, field = (part.lower() for part in key.split("__", 1))
            if section in _TABLES_ONLY:
                raise ConfigError(
                    f"{name}: {_TABLES_ONLY[section]} are configured in the config file "
                    f"([{section}.<name>] tables), not in the environment"
                )
        else:
            continue
        parsed: Any = value
        if (section, field) in _LIST_FIELDS:
            separator = os.pathsep if field == "allowed_roots" else ","
            try:
                parsed = _parse_list(value, separator)
            except ValueError as exc:
                raise ConfigError(f"{name}: {exc}") from exc
        out.setdefault(section, {})[field] = parsed
        sources[(section, field)] = name
    return out


def check_env_names(names: list[str]) -> list[str]:
    """Environment names to pass to a CLI or a check: no `TASKORCH_*` (the server's database URL
    and token); a `*` only at the end (a prefix pattern such as `AWS_*`). Raises `ValueError`."""
    for name in names:
        if not name or name.upper().startswith(ENV_PREFIX):
            raise ValueError(
                f"{name!r} may not be passed to a CLI: TASKORCH_* variables carry the server's "
                "database URL and token; name the variables the CLI needs instead"
            )
        if "*" in name[:-1]:
            raise ValueError(f"{name!r}: a `*` may only end a name (a prefix pattern such as AWS_*)")
    return names
