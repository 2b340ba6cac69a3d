"""The environment a CLI run gets: an allow-list of the server's variables, never `TASKORCH_*`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

__all__ = ["CHECK_ENV_PREFIXES", "DEFAULT_ENV_NAMES", "DEFAULT_ENV_PREFIXES", "allowed_environment"]

# What coding CLIs need from the server's environment: the executable path, a home for their
# own config, locale, terminal, temp dir, proxies and CA bundles, and their vendors' settings.
DEFAULT_ENV_NAMES: Final = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TERM",
        "TMPDIR",
        "TZ",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
        "NODE_EXTRA_CA_CERTS",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    }
)
DEFAULT_ENV_PREFIXES: Final = ("LC_", "ANTHROPIC_", "CLAUDE_", "DISABLE_")
CHECK_ENV_PREFIXES: Final = ("LC_",)
"""A check runs the code a run just wrote: it gets no CLI vendor's keys unless configured."""
_FORBIDDEN_PREFIX: Final = "TASKORCH_"


def allowed_environment(
    environ: Mapping[str, str],
    extra: Iterable[str] = (),
    *,
    set_values: Mapping[str, str] | None = None,
    prefixes: Iterable[str] = DEFAULT_ENV_PREFIXES,
) -> dict[str, str]:
    """The environment a CLI gets: the default allow-list plus `extra` names, then `set_values`.
    `prefixes` are the name prefixes allowed besides the default names (a check passes
    `CHECK_ENV_PREFIXES`).

    `extra` holds exact names or prefix patterns ending in `*` (`AWS_*`). `TASKORCH_*` names
    never pass, whatever the configuration says: they carry the server's database URL and token.
    """
    names = set(DEFAULT_ENV_NAMES)
    allowed = list(prefixes)
    for item in extra:
        if item.endswith("*"):
            allowed.append(item[:-1])
        else:
            names.add(item)
    env = {
        name: value
        for name, value in environ.items()
        if (name in names or name.startswith(tuple(allowed)))
        # Exported shell functions ("BASH_FUNC_x%%" or values starting "() {") are code, not data.
        and not value.startswith("() {")
    }
    env.update(set_values or {})
    return {k: v for k, v in env.items() if not k.upper().startswith(_FORBIDDEN_PREFIX)}
