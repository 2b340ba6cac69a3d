"""Headless Debian chromium for the web console's tests and screenshots (never a downloaded build)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

__all__ = ["CHROMIUM", "browser_page", "require_chromium", "sign_in", "signed_in_client"]

CHROMIUM = Path("/usr/bin/chromium")


def require_chromium() -> None:
    """Skip without Debian's chromium (fail under CI, which installs it: see .ci/run)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: run `apt-get install chromium`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@asynccontextmanager
async def browser_page(**context: Any) -> AsyncIterator[Any]:
    """A fresh page in headless chromium (`/usr/bin/chromium`, launched through Playwright)."""
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            browser_context = await browser.new_context(**context)
            page = await browser_context.new_page()
            # Generous: a wait ends as soon as its condition holds; the slack is for a busy machine.
            page.set_default_timeout(60_000)
            yield page
        finally:
            await browser.close()


async def sign_in(page: Any, url: str, token: str) -> None:
    """Sign in through the login page; the page ends on the queue board."""
    await page.goto(f"{url}/console/login")
    await page.fill("input[name=token]", token)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{url}/console/")


@asynccontextmanager
async def signed_in_client(url: str, token: str) -> AsyncIterator[httpx2.AsyncClient]:
    """An HTTP client holding a console session cookie (signed in as a browser would)."""
    async with httpx2.AsyncClient(base_url=url, headers={"origin": url}) as client:
        response = await client.post("/console/login", data={"token": token})
        assert response.status_code == 303, response.text
        yield client
