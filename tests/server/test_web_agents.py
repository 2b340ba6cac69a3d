"""Agents made, edited and deleted in the web console: in headless chromium (the New agent form,
an agent's page, a refused pattern, Delete) and over plain HTTP (CSRF and Origin refusals, hostile
text escaped, each refused value beside its field, config-file agents read-only, an agent saved
before today's checks, names in the path). Every save goes through `orchestrator.agents.save`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from taskorch.domain.agents import Agent, AgentSpec
from taskorch.errors import NotFound
from taskorch.server.web.agents import FIELDS
from taskorch.server.web.render import TEMPLATES
from tests.http_harness import TOKEN, RunningServer, make_settings, serve_http
from tests.web_browser import browser_page, require_chromium, sign_in, signed_in_client

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
EMPTY_FORM = dict.fromkeys(FIELDS, "")


@asynccontextmanager
async def agents_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    root = tmp_path / "root"
    root.mkdir()
    settings = make_settings(
        root,
        security={"token": TOKEN},
        agents={"from-file": {"personality": "Configured in taskorch.toml", "allowed_tools": ["Read"]}},
    )
    async with serve_http(settings, root) as running:
        yield running


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found is not None
    return found[1]


async def saved_names(server: RunningServer) -> set[str]:
    return {a.name for a in await server.orchestrator.agents.list() if a.source == "saved"}


def problem(html: str, field: str) -> str:
    found = re.findall(rf'<small class="error" data-problem="{field}">([^<]*)</small>', html)
    assert found, f"no problem shown beside {field}"
    return " ".join(found)


def field_value(html: str, name: str) -> str:
    textarea = re.search(rf'<textarea name="{name}"[^>]*>\n(.*?)</textarea>', html, re.S)
    if textarea is not None:
        return textarea[1]
    found = re.search(rf'<input (?:type="number" )?name="{name}"[^>]* value="([^"]*)"', html)
    assert found is not None, name
    return found[1]


# In the browser.


async def test_saving_an_agent_keeps_a_check_command_with_a_line_break(tmp_path: Path) -> None:
    # An <input> would drop the line break inside the quotes (browsers strip LF and CR from
    # its value), so saving the agent for another reason would change its check.
    require_chromium()
    check = ["sh", "-c", "make test\nmake lint"]
    async with agents_server(tmp_path) as server, browser_page() as page:
        registry = server.orchestrator.agents
        await registry.save(AgentSpec(name="lines", check_command=check))
        await sign_in(page, server.url, TOKEN)
        await page.goto(f"{server.url}/console/agents/lines")
        edit = page.locator("form.agent-form")
        await edit.locator("textarea[name=personality]").fill("Now with a personality.")
        await edit.locator("button[type=submit]").click()
        await page.wait_for_url("**/console/agents/lines?done=agent-saved")
        saved = await registry.show("lines")
        assert (saved.personality, saved.check_command) == ("Now with a personality.", check)


async def test_an_agent_is_made_edited_refused_and_deleted_in_the_browser(tmp_path: Path) -> None:
    require_chromium()
    async with agents_server(tmp_path) as server, browser_page() as page:
        registry = server.orchestrator.agents
        await sign_in(page, server.url, TOKEN)
        await page.click("nav >> text=Agents")
        await page.wait_for_url("**/console/agents")

        await page.click("details.new-agent summary")
        form = page.locator("details.new-agent form")
        await form.locator("input[name=name]").fill("tester")
        await form.locator("textarea[name=personality]").fill("Writes the test first.")
        await form.locator("input[name=model]").fill("sonnet")
        await form.locator("textarea[name=allowed_tools]").fill("Read\nBash(pytest:*)\n\npeer.echo")
        await form.locator("textarea[name=denied_tools]").fill("peer.exit")
        await form.locator("select[name=isolation]").select_option("worktree")
        await form.locator("textarea[name=check_command]").fill("pytest -q -k 'not slow'")
        await form.locator("input[name=fix_attempts]").fill("2")
        await form.locator("button[type=submit]").click()
        await page.wait_for_url("**/console/agents?done=agent-created")
        row = page.locator("table.agents tbody tr[data-agent=tester]")
        await row.wait_for()
        assert "Writes the test first." in await row.inner_text()
        assert "Bash(pytest:*)" in await row.inner_text()
        made = await registry.show("tester")
        assert made.allowed_tools == ["Read", "Bash(pytest:*)", "peer.echo"]
        assert made.check_command == ["pytest", "-q", "-k", "not slow"]
        assert (made.isolation, made.fix_attempts, made.on_success) == ("worktree", 2, None)

        # Its page shows the form filled from the agent; change the allowed tools.
        await row.locator("a", has_text="tester").click()
        await page.wait_for_url("**/console/agents/tester")
        edit = page.locator("form.agent-form")
        assert await edit.locator("textarea[name=check_command]").input_value() == "pytest -q -k 'not slow'"
        assert await edit.locator("select[name=isolation]").input_value() == "worktree"
        await edit.locator("textarea[name=allowed_tools]").fill("Read\nGrep")
        await edit.locator("select[name=on_success]").select_option("merge")
        await edit.locator("button[type=submit]").click()
        await page.wait_for_url("**/console/agents/tester?done=agent-saved")
        await page.locator("p.flash", has_text="Agent saved.").wait_for()
        edited = await registry.show("tester")
        assert (edited.allowed_tools, edited.on_success) == (["Read", "Grep"], "merge")
        assert edited.personality == "Writes the test first."

        # A pattern that starts with '-': shown beside its field, the input kept, nothing saved.
        await edit.locator("textarea[name=denied_tools]").fill("peer.exit\n--dangerously-skip-permissions")
        await edit.locator("input[name=model]").fill("opus")
        await edit.locator("button[type=submit]").click()
        shown = page.locator("[data-problem=denied_tools]")
        await shown.wait_for()
        assert "pattern 2:" in await shown.inner_text()
        assert "starts with '-'" in await shown.inner_text()
        assert "denied_tools" in await page.locator("[data-field=problems]").inner_text()
        assert (
            await edit.locator("textarea[name=denied_tools]").input_value()
            == "peer.exit\n--dangerously-skip-permissions"
        )
        assert await edit.locator("input[name=model]").input_value() == "opus"
        assert await registry.show("tester") == edited

        # Delete asks for the box to be ticked first (the browser will not send it unticked).
        delete = page.locator("form.delete-agent")
        await delete.locator("button[type=submit]").click()
        assert await delete.locator("input[name=confirm]").evaluate("el => !el.validity.valid")
        assert await registry.show("tester") == edited
        await delete.locator("input[name=confirm]").check()
        await delete.locator("button[type=submit]").click()
        await page.wait_for_url("**/console/agents?done=agent-deleted")
        await page.locator("p.flash", has_text="Agent deleted.").wait_for()
        assert await page.locator("table.agents tr[data-agent=tester]").count() == 0
        with pytest.raises(NotFound):
            await registry.show("tester")


async def test_hostile_agent_text_renders_as_text_in_the_browser(tmp_path: Path) -> None:
    require_chromium()
    async with agents_server(tmp_path) as server, browser_page() as page:
        dialogs: list[str] = []
        page.on("dialog", lambda d: dialogs.append(d.message))
        await sign_in(page, server.url, TOKEN)
        await page.goto(f"{server.url}/console/agents")
        await page.click("details.new-agent summary")
        form = page.locator("details.new-agent form")
        await form.locator("input[name=name]").fill("hostile")
        await form.locator("textarea[name=personality]").fill(HOSTILE)
        await form.locator("textarea[name=system_prompt]").fill("</textarea><b id=escaped>no</b>")
        await form.locator("button[type=submit]").click()
        await page.wait_for_url("**/console/agents?done=agent-created")
        assert HOSTILE in await page.locator("tr[data-agent=hostile]").inner_text()
        await page.goto(f"{server.url}/console/agents/hostile")
        assert await page.locator("textarea[name=personality]").input_value() == HOSTILE
        prompt = page.locator("textarea[name=system_prompt]")
        assert await prompt.input_value() == "</textarea><b id=escaped>no</b>"
        assert await page.locator("#escaped").count() == 0
        assert await page.locator("main script, main img").count() == 0
        assert await page.evaluate("window.pwned") is None
        assert dialogs == []


# Over HTTP.


async def test_agent_posts_without_csrf_or_from_another_origin_are_refused_and_save_nothing(
    tmp_path: Path,
) -> None:
    async with agents_server(tmp_path) as server, signed_in_client(server.url, TOKEN) as web:
        csrf = csrf_of((await web.get("/console/agents")).text)
        form = {**EMPTY_FORM, "name": "sneaky", "personality": "made elsewhere"}
        foreign = {"origin": "http://evil.example"}
        for path in ("/console/agents", "/console/agents/sneaky"):
            assert (await web.post(path, data=form)).status_code == 403  # no CSRF token
            assert (await web.post(path, data={**form, "csrf": "0" * 43})).status_code == 403
            assert (await web.post(path, data={**form, "csrf": csrf}, headers=foreign)).status_code == 403
        assert await saved_names(server) == set()

        made = await web.post("/console/agents", data={**form, "csrf": csrf})
        assert (made.status_code, made.headers["location"]) == (303, "/console/agents?done=agent-created")
        changed = {**form, "personality": "changed elsewhere"}
        assert (await web.post("/console/agents/sneaky", data=changed)).status_code == 403
        gone = {"confirm": "yes"}
        assert (await web.post("/console/agents/sneaky/delete", data=gone)).status_code == 403
        refused = await web.post(
            "/console/agents/sneaky/delete", data={**gone, "csrf": csrf}, headers=foreign
        )
        assert refused.status_code == 403
        assert (await server.orchestrator.agents.show("sneaky")).personality == "made elsewhere"


async def test_hostile_values_come_back_escaped(tmp_path: Path) -> None:
    async with agents_server(tmp_path) as server, signed_in_client(server.url, TOKEN) as web:
        csrf = csrf_of((await web.get("/console/agents")).text)
        form = {**EMPTY_FORM, "csrf": csrf, "name": "x", "personality": HOSTILE, "allowed_tools": "<b>"}
        refused = await web.post("/console/agents", data=form)
        assert refused.status_code == 422
        assert "<script>" not in refused.text
        assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in refused.text  # kept, escaped
        assert "&#39;&lt;b&gt;&#39;" in problem(refused.text, "allowed_tools")

        saved = await web.post("/console/agents", data={**form, "allowed_tools": "Read"})
        assert saved.status_code == 303
        for path in ("/console/agents", "/console/agents/x"):
            page = await web.get(path)
            assert "<script>window" not in page.text
            assert 'onerror="window' not in page.text
            assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in page.text
        assert (await server.orchestrator.agents.show("x")).personality == HOSTILE


async def test_refused_values_are_shown_beside_their_fields_and_nothing_is_saved(tmp_path: Path) -> None:
    async with agents_server(tmp_path) as server, signed_in_client(server.url, TOKEN) as web:
        csrf = csrf_of((await web.get("/console/agents")).text)
        form = {
            **EMPTY_FORM,
            "csrf": csrf,
            "name": "bad",
            "personality": "kept as typed",
            "model": "--model=evil",
            "allowed_tools": "Read\n-rf",
            "check_command": "make 'test",
            "fix_attempts": "9",
            "isolation": "chroot",
        }
        refused = await web.post("/console/agents", data=form)
        assert refused.status_code == 422
        assert "a model name is" in problem(refused.text, "model")
        assert "pattern 2: &#39;-rf&#39; starts with &#39;-&#39;" in problem(refused.text, "allowed_tools")
        assert "close its quotes" in problem(refused.text, "check_command")
        assert "less than or equal to 5" in problem(refused.text, "fix_attempts")
        assert "none" in problem(refused.text, "isolation")
        assert field_value(refused.text, "personality") == "kept as typed"
        assert field_value(refused.text, "allowed_tools") == "Read\n-rf"
        assert field_value(refused.text, "fix_attempts") == "9"
        assert "<option selected>chroot</option>" in refused.text
        assert 'data-field="problems"' in refused.text
        assert await saved_names(server) == set()

        # A planner this server lacks is refused by the registry: shown, nothing saved.
        unknown = await web.post(
            "/console/agents", data={**EMPTY_FORM, "csrf": csrf, "name": "p", "planner": "nosuch"}
        )
        assert unknown.status_code == 422
        assert "nosuch" in unknown.text
        assert 'data-field="problems"' in unknown.text
        assert await saved_names(server) == set()

        # The New agent form does not replace a saved agent; its page does.
        ok = {**EMPTY_FORM, "csrf": csrf, "name": "good", "personality": "first"}
        assert (await web.post("/console/agents", data=ok)).status_code == 303
        again = await web.post("/console/agents", data={**ok, "personality": "second"})
        assert again.status_code == 422
        assert "is saved already" in problem(again.text, "name")
        bad_edit = await web.post("/console/agents/good", data={**ok, "fix_attempts": "-1"})
        assert bad_edit.status_code == 422
        assert "greater than or equal to 0" in problem(bad_edit.text, "fix_attempts")
        assert (await server.orchestrator.agents.show("good")).personality == "first"


async def test_config_agents_are_read_only_and_a_saved_one_shadows_them(tmp_path: Path) -> None:
    async with agents_server(tmp_path) as server, signed_in_client(server.url, TOKEN) as web:
        registry = server.orchestrator.agents
        page = await web.get("/console/agents/from-file")
        assert page.status_code == 200
        assert '<fieldset class="stack agent-fields" disabled>' in page.text
        assert "edit it there" in page.text
        assert "shadows this one" in page.text
        assert "Save agent" not in page.text.split('data-field="read-only"')[1]
        assert "delete-agent" not in page.text
        csrf = csrf_of(page.text)

        refused = await web.post("/console/agents/from-file/delete", data={"csrf": csrf, "confirm": "yes"})
        assert refused.status_code == 400
        assert (
            "is defined in the server&#39;s config file ([agents.from-file]); remove it there" in refused.text
        )
        assert (await registry.show("from-file")).source == "config"

        shadow = {**EMPTY_FORM, "csrf": csrf, "name": "from-file", "personality": "saved over it"}
        made = await web.post("/console/agents", data=shadow)
        assert made.headers["location"] == "/console/agents?done=agent-shadows"
        assert "shadows the config file" in (await web.get(made.headers["location"])).text
        page = await web.get("/console/agents/from-file")
        assert 'data-field="shadows"' in page.text
        assert "disabled" not in page.text
        assert (await registry.show("from-file")).source == "saved"

        unticked = await web.post("/console/agents/from-file/delete", data={"csrf": csrf})
        assert unticked.status_code == 400
        assert "tick the box" in unticked.text
        assert (await registry.show("from-file")).source == "saved"
        deleted = await web.post("/console/agents/from-file/delete", data={"csrf": csrf, "confirm": "yes"})
        assert deleted.headers["location"] == "/console/agents/from-file?done=agent-restored"
        assert (await registry.show("from-file")).personality == "Configured in taskorch.toml"


async def test_an_agent_saved_before_todays_checks_shows_what_to_fix(tmp_path: Path) -> None:
    async with agents_server(tmp_path) as server, signed_in_client(server.url, TOKEN) as web:
        old = Agent(name="old", model="--dangerous", allowed_tools=["Read", "-x"], personality="legacy")
        await server.orchestrator.store.save_agent(old)
        page = await web.get("/console/agents/old")
        assert page.status_code == 200
        assert 'data-field="unusable"' in page.text
        assert "This agent cannot be used" in page.text
        assert "a model name is" in problem(page.text, "model")
        assert "pattern 2: &#39;-x&#39;" in problem(page.text, "allowed_tools")
        assert field_value(page.text, "model") == "--dangerous"

        fixed = {**EMPTY_FORM, "csrf": csrf_of(page.text), "personality": "legacy", "model": "sonnet",
                 "allowed_tools": "Read"}  # fmt: skip
        assert (await web.post("/console/agents/old", data=fixed)).status_code == 303
        agent = await server.orchestrator.agents.get("old")  # usable again
        assert (agent.model, agent.allowed_tools) == ("sonnet", ["Read"])
        assert 'data-field="unusable"' not in (await web.get("/console/agents/old")).text


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/console/agents/nobody", 404, "no agent named &#39;nobody&#39;"),
        ("/console/agents/%3Cb%3Ehi", 404, "no agent can be called &#39;&lt;b&gt;hi&#39;"),
        ("/console/agents/a%20b", 404, "an agent name is 1-64 letters"),
        ("/console/agents/" + "x" * 65, 404, "no agent can be called"),
        ("/console/agents/a/b", 404, "Not Found"),
    ],
)
async def test_names_in_the_path_that_are_not_agents_answer_a_clear_page(
    tmp_path: Path, path: str, status: int, says: str
) -> None:
    async with agents_server(tmp_path) as server, signed_in_client(server.url, TOKEN) as web:
        page = await web.get(path)
        assert page.status_code == status
        assert says in page.text
        assert "<b>hi" not in page.text
        if path != "/console/agents/nobody":  # a valid name: saving there makes that agent
            posted = await web.post(path, data={**EMPTY_FORM, "csrf": csrf_of(page.text)})
            assert posted.status_code == 404
            deleted = await web.post(f"{path}/delete", data={"csrf": csrf_of(page.text), "confirm": "yes"})
            assert deleted.status_code == 404
        assert await saved_names(server) == set()


async def test_agent_names_in_links_are_path_escaped(tmp_path: Path) -> None:
    async with agents_server(tmp_path) as server, signed_in_client(server.url, TOKEN) as web:
        await server.orchestrator.store.save_agent(Agent(name="a.b-c_1"))
        listed = (await web.get("/console/agents")).text
        assert 'href="/console/agents/a.b-c_1"' in listed
        assert 'action="/console/agents/a.b-c_1/delete"' in (await web.get("/console/agents/a.b-c_1")).text
        html = TEMPLATES.from_string('<a href="/x/{{ n|path_part }}">').render(n='a/"b c<')
        assert html == '<a href="/x/a%2F%22b%20c%3C">'
