"""One JSON request to a model API over httpx2, every failure worded for the caller.

The official `anthropic` and `openai` clients are not used at runtime: together they add five
distributions and, imported into a running server, 1-7 s and 16-45 MB each (the figures are in
docs/configuration.md, `[planners.<name>]`); a planner needs one POST. The key goes out in one
header and never into a message: whatever the API says back is stripped of it first.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx2

from taskorch.errors import PlannerUnavailable, PlanningFailed
from taskorch.planning.base import own_steps
from taskorch.wording import Worded

__all__ = ["ApiCall", "UnsupportedParameter", "post_json", "redact"]

log = logging.getLogger(__name__)

_SAID_CHARS: Final = 300
_RETRY_HEADERS: Final = ("retry-after", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")


@dataclass(frozen=True)
class ApiCall:
    """Who is called, for messages: `who` names the planner, `key_env` where its key lives."""

    who: str
    url: str
    key: str | None
    key_env: str | None


class UnsupportedParameter(PlanningFailed):
    """The API refused one request field as unsupported (HTTP 400, `code: unsupported_parameter`):
    OpenAI's answer to `max_tokens` for models that want `max_completion_tokens`."""

    def __init__(self, message: str | Worded, param: str) -> None:
        super().__init__(message)
        self.param = param


def _unsupported_param(response: httpx2.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("code") == "unsupported_parameter":
        param = error.get("param")
        return param if isinstance(param, str) else None
    return None


def redact(text: str, key: str | None) -> str:
    """`text` on one line, at most 300 characters, without `key` in it."""
    if key:
        text = text.replace(key, "[key]")
    text = "".join(c if c.isprintable() else " " for c in " ".join(text.split()))
    return text if len(text) <= _SAID_CHARS else text[: _SAID_CHARS - 1] + "…"


def _said(response: httpx2.Response, key: str | None) -> str:
    """The error message in an API's error body (`{"error": {"message": ...}}` or `{"error": "..."}`)."""
    try:
        body = response.json()
    except ValueError:
        return redact(response.text, key)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return redact(error["message"], key)
    if isinstance(error, str):
        return redact(error, key)
    return redact(response.text, key)


def _retry_after(headers: Mapping[str, str]) -> str:
    for name in _RETRY_HEADERS:
        value = headers.get(name)
        if value:
            try:
                seconds = float(value.rstrip("s"))
            except ValueError:
                continue
            if math.isfinite(seconds) and seconds >= 0:
                return f"; retry after {math.ceil(seconds)} s"
    return ""


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


async def post_json(
    call: ApiCall, path: str, headers: Mapping[str, str], body: Mapping[str, Any], wait_seconds: float
) -> Any:
    """POST `body` to `call.url + path`; the answer's JSON.

    Raises `PlannerUnavailable` when the API cannot be reached, refuses the key (401/403) or
    rate-limits (429, saying when to retry); `PlanningFailed` for a timeout, another error
    status or an answer that is not JSON.
    """
    url = call.url + path
    # Proxy variables are honoured for remote APIs, never for a server on this machine.
    async with httpx2.AsyncClient(timeout=wait_seconds, trust_env=not _loopback(url)) as client:
        try:
            response = await client.post(url, headers=dict(headers), json=body)
        except httpx2.TimeoutException as exc:
            raise PlanningFailed(
                own_steps(
                    f"{call.who} did not answer within {wait_seconds:g} s; ask for a smaller plan, raise its "
                    f"timeout_seconds"
                )
            ) from exc
        except httpx2.TransportError as exc:
            raise PlannerUnavailable(
                own_steps(
                    f"{call.who} cannot be reached at {call.url} "
                    f"({redact(str(exc) or type(exc).__name__, call.key)}); "
                    f"start it or fix its base_url"
                )
            ) from exc
    status = response.status_code
    log.info("%s answered HTTP %s", call.who, status)
    if status in (401, 403):
        where = f"the key in ${call.key_env}" if call.key_env else "no key (api_key_env is unset)"
        raise PlannerUnavailable(
            own_steps(
                f"{call.who} refused the request as unauthorised "
                f"(HTTP {status}: {_said(response, call.key)}); it was sent {where}. Fix the key"
            )
        )
    if status == 429:
        raise PlannerUnavailable(
            own_steps(
                f"{call.who} is rate-limited (HTTP 429: {_said(response, call.key)})"
                f"{_retry_after(response.headers)}"
            )
        )
    if status >= 400:
        what = "failed" if status >= 500 else "rejected the request"
        hint = "retry later" if status >= 500 else "check its model and base_url"
        message = own_steps(f"{call.who} {what} (HTTP {status}: {_said(response, call.key)}); {hint}")
        if status == 400 and (param := _unsupported_param(response)) is not None:
            raise UnsupportedParameter(message, param)
        raise PlanningFailed(message)
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError) as exc:
        raise PlanningFailed(
            own_steps(
                f"{call.who} answered with something that is not JSON ({redact(response.text, call.key)!r}); "
                f"check its base_url"
            )
        ) from exc
