"""`[planners.<name>]`: planners over a model API (Anthropic Messages, OpenAI chat completions).

A key never sits in the config file: `api_key_env` names the environment variable that holds
it, and a table with a literal key field (`api_key`, `key`, `token`, ...) is refused.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from taskorch.config.sections import Section
from taskorch.domain.agents import PLANNER_NAME_PATTERN
from taskorch.domain.cli_values import ModelName

__all__ = [
    "API_PLANNER_KINDS",
    "ENV_NAME_PATTERN",
    "PLANNER_NAME_PATTERN",
    "RESERVED_PLANNER_NAMES",
    "ApiPlannerSettings",
    "check_planner_name",
]

API_PLANNER_KINDS: Final = ("anthropic", "openai")
RESERVED_PLANNER_NAMES: Final = frozenset({"explicit", "claude_code"})
ENV_NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
_KEY_FIELDS: Final = frozenset(
    {"api_key", "apikey", "key", "token", "secret", "password", "authorization", "bearer"}
)
_DEFAULT_URLS: Final = {"anthropic": "https://api.anthropic.com", "openai": "https://api.openai.com/v1"}


def check_planner_name(name: str) -> str:
    """`name` if it is a planner name; raises `ValueError` saying what one is."""
    if not re.fullmatch(PLANNER_NAME_PATTERN, name):
        raise ValueError(
            f"planner name {name[:80]!r} must be 1-32 lowercase letters, digits, '_' or '-', "
            "starting with a letter"
        )
    return name


def _check_url(url: str) -> str:
    if not re.fullmatch(r"https?://[^\s/?#@]+(/[^\s?#]*)?", url):
        raise ValueError(
            "base_url must be an http:// or https:// URL without user info, query or fragment, "
            "e.g. http://127.0.0.1:11434/v1"
        )
    return url.rstrip("/")


def _check_env_name(name: str) -> str:
    if not re.fullmatch(ENV_NAME_PATTERN, name):
        raise ValueError(
            "api_key_env is the NAME of the environment variable holding the key "
            "(letters, digits and '_', e.g. OPENAI_API_KEY), never the key itself"
        )
    return name


class ApiPlannerSettings(Section):
    """One `[planners.<name>]` table."""

    kind: Literal["anthropic", "openai"] = Field(
        description="anthropic: the Messages API; openai: chat completions (OpenAI, Azure OpenAI, "
        "Ollama, vLLM, LM Studio, llama.cpp server)."
    )
    model: ModelName = Field(description="The model to plan with.")
    base_url: Annotated[str, AfterValidator(_check_url)] | None = Field(
        default=None,
        description="API root. Default: https://api.anthropic.com (anthropic), "
        "https://api.openai.com/v1 (openai).",
    )
    api_key_env: Annotated[str, AfterValidator(_check_env_name)] | None = Field(
        default=None,
        description="Name of the environment variable holding the API key; unset: no key is sent "
        "(local servers).",
    )
    api_key_header: Literal["authorization", "api-key"] = Field(
        default="authorization",
        description="openai: send the key as `Authorization: Bearer` or as `api-key` (Azure OpenAI).",
    )
    structured_output: Literal["json_schema", "tool"] = Field(
        default="json_schema",
        description="openai: ask for the plan through response_format json_schema or a forced tool call.",
    )
    timeout_seconds: float = Field(
        default=50.0,
        gt=0,
        le=3600,
        description="Bound on the whole planning, repair round included; keep it under the caller's "
        "limit (many MCP clients cut a call at 60 s).",
    )
    max_tokens: int = Field(default=8192, ge=256, le=200_000, description="Longest answer.")
    token_limit_field: Literal["auto", "max_tokens", "max_completion_tokens"] = Field(
        default="auto",
        description="openai: the request field max_tokens goes in. Newer OpenAI models refuse "
        "`max_tokens`; local servers know only it. auto: `max_completion_tokens` for api.openai.com "
        "and Azure OpenAI, else `max_tokens`; either way a 400 refusing that field switches once.",
    )
    repair_rounds: int = Field(
        default=1, ge=0, le=3, description="Times invalid steps are sent back to the model to fix."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_literal_key(cls, data: Any) -> Any:
        if isinstance(data, dict):
            literal = sorted(k for k in data if isinstance(k, str) and k.lower() in _KEY_FIELDS)
            if literal:
                raise ValueError(
                    f"{literal[0]!r}: a key never goes in the config file; put it in an environment "
                    "variable and name that variable with api_key_env"
                )
        return data

    def token_field(self) -> str:
        """The field the answer's token limit is sent in (openai; see `token_limit_field`)."""
        if self.token_limit_field != "auto":
            return self.token_limit_field
        host = (urlsplit(self.url()).hostname or "").lower()
        official = host == "api.openai.com" or host.endswith(".openai.azure.com")
        return "max_completion_tokens" if official else "max_tokens"

    def url(self) -> str:
        """`base_url`, else the kind's public API root."""
        return self.base_url or _DEFAULT_URLS[self.kind]
