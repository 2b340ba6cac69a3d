"""The web console: server-rendered pages at `/console/` (and `/` redirects there).

`console_routes` gives the routes to add to the HTTP app. Pages and streams read the shared
orchestrator; actions go through the same engine calls as the API. Access: see
`taskorch.server.web.session` (token -> signed session cookie, CSRF) and
`taskorch.server.web.guard` (the gate every console request passes). Wrong tokens on the
sign-in form count against the app's `AuthLimiter`, with wrong bearer tokens.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

import anyio
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from taskorch.engine.orchestrator import Orchestrator
from taskorch.errors import CallerError, StoreError
from taskorch.problems import problems_of
from taskorch.server.auth_limit import AuthLimiter, client_address
from taskorch.server.web.actions import ConsoleActions
from taskorch.server.web.agents import ConsoleAgents
from taskorch.server.web.board import BoardStream
from taskorch.server.web.guard import ConsoleGuard
from taskorch.server.web.live import LiveStreams
from taskorch.server.web.pages import ConsolePages
from taskorch.server.web.render import STATIC_DIR, html_page
from taskorch.server.web.session import ConsoleAuth

__all__ = ["console_routes"]

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]
LOGIN_FAILURE_DELAY = 0.5


def _shown_errors(endpoint: Endpoint) -> Endpoint:
    """Refusals as an error page with the message; an unexpected fault logged, answered 500."""

    @functools.wraps(endpoint)
    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except CallerError as exc:
            return html_page(request, "error.html", status=exc.status_code, message=str(exc))
        except ValidationError as exc:
            problems = "; ".join(str(p) for p in problems_of(exc))
            return html_page(request, "error.html", status=422, message=f"invalid: {problems}")
        except StoreError as exc:
            log.warning("store fault serving console %s: %s", request.url.path, exc)
            return html_page(request, "error.html", status=503, message=exc.advice or "the store failed")
        except Exception:
            log.exception("unexpected error serving console %s %s", request.method, request.url.path)
            return html_page(request, "error.html", status=500, message="the server failed; see its log")

    return wrapped


def console_routes(orchestrator: Orchestrator, limiter: AuthLimiter) -> list[BaseRoute]:
    """`/` (a redirect) and the `/console` app with its own gate; `limiter` counts wrong tokens
    sent to the sign-in form and refuses them (429) from an address it has locked out."""
    settings = orchestrator.settings
    auth = ConsoleAuth(
        settings.security.token,
        allowed_origins=tuple(o.strip().lower().rstrip("/") for o in settings.server.allowed_origins),
    )
    pages, live = ConsolePages(orchestrator), LiveStreams(orchestrator)
    actions, agents = ConsoleActions(orchestrator, pages), ConsoleAgents(orchestrator)

    async def login_page(request: Request) -> Response:
        if not auth.needs_login or request.scope["state"].get("console_session") is not None:
            return RedirectResponse("/console/", 303)
        return html_page(request, "login.html", failed=False, locked_out="")

    async def login(request: Request) -> Response:
        if not auth.needs_login:
            return RedirectResponse("/console/", 303)
        form = await request.form()
        given = form.get("token")
        attempt = limiter.attempt(
            client_address(request.scope), lambda: isinstance(given, str) and auth.token_matches(given)
        )
        if attempt.locked_out:
            shown = f"Too many wrong tokens from your address: try again in {attempt.retry_after} s."
            locked = html_page(request, "login.html", status=429, failed=False, locked_out=shown)
            locked.headers["retry-after"] = str(attempt.retry_after)
            return locked
        if not attempt.granted:
            log.warning("console: a sign-in with a wrong token from %s", request.client)
            await anyio.sleep(LOGIN_FAILURE_DELAY)  # slows guessing
            return html_page(request, "login.html", status=401, failed=True, locked_out="")
        value, _ = auth.new_cookie()
        response = RedirectResponse("/console/", 303)
        response.headers.append("set-cookie", auth.cookie_header(value, request))
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/console/login", 303)
        response.headers.append("set-cookie", auth.cookie_header("", request, max_age=0))
        return response

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return html_page(request, "error.html", status=exc.status_code, message=str(exc.detail))

    get, post = ["GET"], ["POST"]
    routes = [
        Route("/", _shown_errors(pages.board), methods=get),
        Route("/board/live", _shown_errors(BoardStream(orchestrator).board), methods=get),
        Route("/login", login_page, methods=get),
        Route("/login", login, methods=post),
        Route("/logout", logout, methods=post),
        Route("/tasks", _shown_errors(actions.create_task), methods=post),
        Route("/tasks/{task_id}", _shown_errors(pages.task), methods=get),
        Route("/tasks/{task_id}/live", _shown_errors(live.task), methods=get),
        Route("/tasks/{task_id}/changes", _shown_errors(pages.changes), methods=get),
        Route("/tasks/{task_id}/cancel", _shown_errors(actions.cancel_task), methods=post),
        Route("/tasks/{task_id}/retry", _shown_errors(actions.retry_task), methods=post),
        Route("/tasks/{task_id}/run", _shown_errors(actions.run_task), methods=post),
        Route("/tasks/{task_id}/merge", _shown_errors(actions.merge_task), methods=post),
        Route("/tasks/{task_id}/discard", _shown_errors(actions.discard_changes), methods=post),
        Route("/plans", _shown_errors(pages.plans), methods=get),
        Route("/plans/{plan_id}", _shown_errors(pages.plan), methods=get),
        Route("/plans/{plan_id}/live", _shown_errors(live.plan), methods=get),
        Route("/plans/{plan_id}/approve", _shown_errors(actions.approve_plan), methods=post),
        Route("/plans/{plan_id}/reject", _shown_errors(actions.reject_plan), methods=post),
        Route("/plans/{plan_id}/cancel", _shown_errors(actions.cancel_plan), methods=post),
        Route("/agents", _shown_errors(agents.agents), methods=get),
        Route("/agents", _shown_errors(agents.create), methods=post),
        Route("/agents/{name}", _shown_errors(agents.page), methods=get),
        Route("/agents/{name}", _shown_errors(agents.save), methods=post),
        Route("/agents/{name}/delete", _shown_errors(agents.delete), methods=post),
        Route("/servers", _shown_errors(pages.servers), methods=get),
        Route("/stats", _shown_errors(pages.stats), methods=get),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    console = Starlette(
        routes=routes,
        middleware=[Middleware(ConsoleGuard, auth=auth)],
        exception_handlers={HTTPException: not_found},
    )

    async def home(request: Request) -> Response:
        return RedirectResponse("/console/", 307)

    return [Route("/", home, methods=["GET", "HEAD"]), Mount("/console", app=console)]
