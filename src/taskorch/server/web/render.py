"""Server-rendered HTML: one Jinja2 environment with autoescape on for every template.

Every string a caller gave (prompts, tags, agent names, results, errors) reaches the page only
through `{{ ... }}`, which escapes it; no template marks caller data `|safe`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from taskorch import __version__
from taskorch.server.web.session import CSRF_FIELD, Session

__all__ = ["STATIC_DIR", "TEMPLATES", "duration", "form_fields", "html_page", "path_part"]

HERE: Final = Path(__file__).parent
STATIC_DIR: Final = HERE / "static"

NAV: Final = (
    ("board", "/console/", "Queue"),
    ("plans", "/console/plans", "Plans"),
    ("agents", "/console/agents", "Agents"),
    ("servers", "/console/servers", "Servers"),
    ("stats", "/console/stats", "Statistics"),
)


FLASHES: Final = {
    "created": "Task created.",
    "cancelled": "Cancelled.",
    "retried": "A new copy of the task was queued.",
    "started": "The server was asked to run the task now.",
    "approved": "Plan approved; it is running.",
    "rejected": "Plan rejected.",
    "plan-cancelled": "Plan cancelled.",
    "discarded": "The task's worktree and branch were deleted.",
    "agent-created": "Agent saved.",
    "agent-saved": "Agent saved.",
    "agent-shadows": "Agent saved. It shadows the config file's agent of that name until it is deleted.",
    "agent-deleted": "Agent deleted.",
    "agent-restored": "Saved agent deleted: the config file's agent of that name is in effect again.",
}


def duration(seconds: float | None) -> str:
    """`95` -> `1m 35s`; None -> an em dash."""
    if seconds is None:
        return "—"
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _money(value: float | None) -> str:
    return "—" if value is None else f"${value:.4f}"


def path_part(value: object) -> str:
    """`value` quoted for one segment of a URL path (a `/` too); the page escapes it as HTML."""
    return quote(str(value), safe="")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(duration=duration, when=_when, money=_money, path_part=path_part)
    env.globals.update(nav=NAV, version=__version__, csrf_field=CSRF_FIELD)
    return env


TEMPLATES: Final = _environment()


def html_page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render `template` with the request's session (for its CSRF token) and `context`."""
    session: Session | None = request.scope.get("state", {}).get("console_session")
    context.setdefault("active", "")
    context.setdefault("flash", FLASHES.get(request.query_params.get("done", ""), ""))
    body = TEMPLATES.get_template(template).render(
        csrf=session.csrf if session is not None else "", signed_in=session is not None, **context
    )
    return HTMLResponse(body, status)


async def form_fields(request: Request) -> dict[str, str]:
    """A POSTed form's text fields but the CSRF token (files are left out)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}
