"""Hostile arguments for every MCP tool, and the checks that the server survived them.

Used by `tests/server/test_fuzz_mcp.py` (a fixed seed and bounded examples in the default run) and by
`scripts/fuzz_mcp.sh` (a long random run). The target is a whole server as `taskorch serve`
builds it: a real SQLite file, the executors from the settings (a fake `claude` that replays
real transcripts), the downstream pool, and the SDK's in-process client.

Each example calls one tool with arguments drawn from its input schema, bent the ways a
hostile or careless client would bend them: flags where values belong, paths out of the
roots, NUL bytes, lone surrogates, SQL and HTML, huge numbers, wrong types, unknown keys, ids
of objects that exist and of ones that do not. Every answer must be a result or a tool error
that says something: never the SDK's bare "Error executing tool <name>", which means an
exception escaped. After the run the database must pass `PRAGMA integrity_check` and `get_statistics`
must agree with the rows.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from hypothesis import strategies as st
from mcp import Client
from mcp.types import CallToolResult, TextContent

from taskorch.app import build_orchestrator
from taskorch.config import load_settings
from taskorch.engine.orchestrator import Orchestrator
from taskorch.executors.registry import build_executors
from taskorch.server.mcp import build_mcp_server
from tests.executor_helpers import write_fake_claude

__all__ = ["FuzzTarget", "arguments_for", "check_answer", "check_consistency", "open_fuzz_target"]

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# What the SDK answers when an exception escapes a tool: the name and nothing else.
_INTERNAL_ERROR = re.compile(r"^Error executing tool [\w-]+$")
# Long enough to cross every length limit, short enough to keep an example fast.
_LONG = "x" * 300_000
_HOSTILE_STRINGS = [
    "",
    " ",
    "-",
    "--",
    "--dangerously-skip-permissions",
    "--permission-mode=bypassPermissions",
    "-p",
    "--settings={}",
    "../../../etc/passwd",
    "/etc",
    "/",
    "~",
    ".",
    "a\x00b",
    "\x00",
    "\ud800",
    "\udfff tail",
    "' OR 1=1 --",
    '"; DROP TABLE tasks; --',
    "<script>alert(1)</script>",
    "{prompt}",
    "{work_directory}",
    "${HOME}",
    "$(id)",
    "`id`",
    "\n\r\t",
    "\u202e\u200b",
    "null",
    "true",
    "-1",
    "1e999",
    "NaN",
    "*",
    "server.*",
    "Bash(rm -rf /:*)",
    "mcp__x__y",
    "00000000-0000-0000-0000-000000000000",
    "x" * 65,
    "x" * 5000,
    _LONG,
]
_HUGE_INTS = [0, -1, 1, 2**31, -(2**31), 2**63, -(2**63) - 1, 2**64, 10**30, -(10**30)]
_WAIT_NAMES = frozenset({"wait_seconds", "wait", "timeout_seconds"})
_ID_NAMES = frozenset({"task_id", "plan_id", "continue_from", "id", "cursor"})
_PATH_NAMES = frozenset({"work_directory", "work_path", "path", "directory"})
# Arguments whose schema is a plain string (they take aliases too): what a careful client sends.
_WORDS = {
    "execution_mode": ["standard", "claude_code", "custom", "ClaudeCode", "Standard"],
    "priority": ["low", "normal", "high", "urgent", "High", "Medium"],
    "status": ["queued", "running", "succeeded", "failed", "cancelled", "waiting"],
}
_NAME_NAMES = frozenset({"agent", "name", "executor", "server"})


@dataclass(repr=False)
class FuzzTarget:
    """A running server and what the run has learned about it."""

    client: Client
    orchestrator: Orchestrator
    database: Path
    root: Path
    outside: Path
    tools: dict[str, dict[str, Any]]
    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    tool_errors: int = 0

    def __repr__(self) -> str:
        return f"FuzzTarget({self.database})"

    def paths(self) -> list[str]:
        root = str(self.root)
        return [
            root,
            f"{root}/sub/dir",
            f"{root}/../outside",
            f"{root}-evil",
            str(self.root / "link-out"),
            str(self.root / "link-out" / "deeper"),
            str(self.outside),
            "relative/dir",
            f"{root}/a\x00b",
            f"{root}/" + "d" * 300,
            "/proc/self",
        ]

    def learn(self, content: Any) -> None:
        """Remember ids and names the server answered with, so later calls can use them."""
        if isinstance(content, dict):
            for key, value in content.items():
                if isinstance(value, str) and (key.endswith("id") and _UUID.match(value)):
                    if value not in self.ids:
                        self.ids.append(value)
                elif key == "name" and isinstance(value, str) and value not in self.names:
                    self.names.append(value)
                else:
                    self.learn(value)
        elif isinstance(content, list):
            for item in content:
                self.learn(item)


@asynccontextmanager
async def open_fuzz_target(tmp_path: Path) -> AsyncIterator[FuzzTarget]:
    """A whole server over a SQLite file in `tmp_path`, and the SDK client attached to it."""
    root = tmp_path / "root"
    (root / "sub" / "dir").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link-out").symlink_to(outside)
    database = tmp_path / "fuzz.db"
    claude = write_fake_claude(tmp_path / "bin")
    settings = load_settings(
        env={},
        overrides={
            "storage": {"url": str(database)},
            "security": {"allowed_roots": [str(root)]},
            "claude_code": {"path": str(claude)},
            "runs": {"log_dir": str(tmp_path / "logs")},
            "tasks": {"max_prompt_chars": 20_000},
            # A downstream server that cannot start: plans that name it must fail cleanly.
            "downstream": {"ghost": {"transport": "stdio", "command": str(tmp_path / "no-such-server")}},
        },
    )
    orchestrator = build_orchestrator(
        settings, executors=build_executors(settings, {"PATH": "/usr/bin:/bin"})
    )
    async with orchestrator.running(), Client(build_mcp_server(orchestrator)) as client:
        listed = await client.list_tools()
        tools = {tool.name: tool.input_schema for tool in listed.tools}
        yield FuzzTarget(client, orchestrator, database, root, outside, tools)


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(defs.get(ref.removeprefix("#/$defs/"), {}), defs)
    return schema


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from(_HUGE_INTS),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(_HOSTILE_STRINGS),
        st.text(max_size=40),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
        ),
        max_leaves=12,
    )


def _plausible(schema: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values a careful client would send: inside the schema's types, bounds and patterns."""
    schema = _resolve(schema, defs)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([_plausible(option, defs, depth) for option in schema[key]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([_plausible({**schema, "type": k}, defs, depth) for k in kind])
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda v: len(v) <= 64)
        return st.text("abcdefgh ijk-_.", min_size=max(1, schema.get("minLength", 1)), max_size=20)
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
        high = schema.get("maximum", schema.get("exclusiveMaximum", low + 11) - 1)
        return st.integers(min_value=math.ceil(low), max_value=max(math.ceil(low), math.floor(high)))
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array" and depth < 3:
        return st.lists(_plausible(schema.get("items", {}), defs, depth + 1), max_size=2)
    if kind == "object" and depth < 3:
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {name: _plausible(sub, defs, depth + 1) for name, sub in properties.items() if name in required},
            optional={
                name: _plausible(sub, defs, depth + 1)
                for name, sub in properties.items()
                if name not in required
            },
        )
    return st.none()


def _hostile(schema: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of roughly the schema's type with the hostile members of that type, or any JSON."""
    schema = _resolve(schema, defs)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([_hostile(option, defs, depth) for option in schema[key]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([_hostile({**schema, "type": k}, defs, depth) for k in kind])
    if "enum" in schema or kind == "string":
        return st.one_of(st.sampled_from(_HOSTILE_STRINGS), st.text(max_size=60), _json_values())
    if kind in ("integer", "number"):
        return st.one_of(
            st.sampled_from(_HUGE_INTS),
            st.floats(allow_nan=False, allow_infinity=False),
            st.sampled_from(_HOSTILE_STRINGS[:12]),
        )
    if kind == "array" and depth < 3:
        return st.one_of(
            st.lists(_hostile(schema.get("items", {}), defs, depth + 1), max_size=5), _json_values()
        )
    if kind == "object" and depth < 3:
        properties = schema.get("properties", {})
        if properties:
            return st.fixed_dictionaries(
                {}, optional={name: _hostile(sub, defs, depth + 1) for name, sub in properties.items()}
            )
    return _json_values()


@st.composite
def arguments_for(draw: st.DrawFn, target: FuzzTarget, tool: str) -> dict[str, Any]:
    """One set of arguments for `tool`: a careful call, one with a bad part, or a hostile one."""
    schema = target.tools[tool]
    style = draw(st.sampled_from(["careful", "careful", "careful", "one bad part", "hostile", "junk"]))
    if style == "junk":
        return draw(st.dictionaries(st.text(max_size=20), _json_values(), max_size=5))
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    names = [
        n
        for n in schema.get("properties", {})
        if n in required or draw(st.integers(0, 3 if style == "careful" else 1)) == 0
    ]
    bad = set(names) if style == "hostile" else set()
    if style == "one bad part" and names:
        bad = {draw(st.sampled_from(names))}
    arguments: dict[str, Any] = {}
    for name in names:
        sub = schema["properties"][name]
        arguments[name] = draw(_value_for(target, name, sub, defs, hostile=name in bad))
    if style != "careful" and required and draw(st.integers(0, 9)) == 0:
        del arguments[draw(st.sampled_from(sorted(required)))]  # a required argument left out
    if style != "careful" and draw(st.integers(0, 4)) == 0:  # an argument no tool has, or a typo
        extra = draw(st.one_of(st.sampled_from(["priorty", "workdir", "__proto__", "", "$where"]), st.text()))
        arguments[extra] = draw(_json_values())
    return arguments


def _value_for(
    target: FuzzTarget, name: str, schema: dict[str, Any], defs: dict[str, Any], *, hostile: bool
) -> st.SearchStrategy[Any]:
    typed = _hostile(schema, defs) if hostile else _plausible(schema, defs)
    if not hostile and name in _WORDS:
        typed = st.sampled_from(_WORDS[name])
    if name in _WAIT_NAMES:
        # Real waits would make an example take up to 50 s; any invalid value is still fair game.
        return typed.map(_no_real_wait)
    if name in _PATH_NAMES:
        paths = target.paths()
        return st.one_of(st.sampled_from(paths), typed) if hostile else st.sampled_from(paths[:2])
    if name in _ID_NAMES or name == "depends_on":
        known = _one_of_now(target.ids, "00000000-0000-0000-0000-000000000000")
        if name == "depends_on":
            return st.lists(known, max_size=2)
        return st.one_of(known, typed) if hostile else known
    if name in _NAME_NAMES:
        known = _one_of_now(target.names, "nobody")
        return st.one_of(known, typed) if hostile else known
    if name == "steps":
        return st.one_of(_steps(target), typed)
    return typed


def _one_of_now(items: list[str], default: str) -> st.SearchStrategy[str]:
    """An item of a list that grows during the run (`default` while it is empty).

    Not `sampled_from(items)`: its draws would change shape as the list grows, which Hypothesis
    reports as flaky generation.
    """
    return st.integers(min_value=0, max_value=2**16).map(
        lambda i: items[i % len(items)] if items else default
    )


def _no_real_wait(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0.05 < value <= 3600:
        return 0
    return value


def _steps(target: FuzzTarget) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Plan steps that are nearly right: real step shapes with hostile parts."""
    step_ids = st.sampled_from(["a", "b", "c", "", "--x", "a" * 200])
    mcp_step = st.fixed_dictionaries(
        {
            "id": step_ids,
            "server": st.sampled_from(["ghost", "nope", "--help", ""]),
            "tool": st.sampled_from(["t", "read_file", "-x"]),
        },
        optional={
            "arguments": st.dictionaries(st.text(max_size=8), _json_values(), max_size=3),
            "depends_on": st.lists(step_ids, max_size=3),
            "timeout_seconds": st.sampled_from([0, -1, 1, 10**9]),
            "max_attempts": st.sampled_from([0, 1, 10**6]),
        },
    )
    code_step = st.fixed_dictionaries(
        {
            "id": step_ids,
            "kind": st.just("claude_code"),
            "task": st.fixed_dictionaries(
                {
                    "prompt": st.sampled_from(_HOSTILE_STRINGS[:20]),
                    "work_directory": st.sampled_from(target.paths()),
                },
                optional={"include_results": st.lists(step_ids, max_size=2)},
            ),
        },
        optional={"depends_on": st.lists(step_ids, max_size=2)},
    )
    return st.lists(st.one_of(mcp_step, code_step), max_size=4)


def _text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def check_answer(target: FuzzTarget, tool: str, arguments: dict[str, Any], result: CallToolResult) -> None:
    """A result, or a tool error with a message of ours: no exception escaped the tool."""
    target.calls[tool] = target.calls.get(tool, 0) + 1
    text = _text(result)
    if result.is_error:
        target.tool_errors += 1
        assert text.strip(), f"{tool}({arguments!r}) gave an empty error"
        assert not _INTERNAL_ERROR.match(text.strip()), (
            f"{tool}({_short(arguments)}) raised inside the server: {text}"
        )
        assert "Traceback" not in text, text
    else:
        target.learn(result.structured_content)


def _short(arguments: dict[str, Any]) -> str:
    text = json.dumps(arguments, default=str, ensure_ascii=True)
    return text if len(text) < 600 else text[:600] + "..."


async def check_consistency(target: FuzzTarget) -> None:
    """The database is whole and the server's statistics agree with its rows."""
    with sqlite3.connect(f"file:{target.database}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        dangling = db.execute(
            "SELECT count(*) FROM task_dependencies d LEFT JOIN tasks t ON t.id = d.depends_on_id"
            " WHERE t.id IS NULL"
        ).fetchone()[0]
        assert dangling == 0, "a dependency names a task that does not exist"
        leases = db.execute(
            "SELECT count(*) FROM tasks WHERE status = 'running' AND lease_token IS NULL"
        ).fetchone()[0]
        assert leases == 0, "a running task holds no lease"
        # Runs the fuzz started may still be moving tasks along: compare the rows with two
        # identical statistics read around them.
        with anyio.fail_after(60):
            while True:
                before = await _statistics(target)
                rows = dict(db.execute("SELECT status, count(*) FROM tasks GROUP BY status").fetchall())
                if before == await _statistics(target):
                    break
                await anyio.sleep(0.05)
    assert before["total"] == sum(rows.values())
    assert {k: v for k, v in before["by_status"].items() if v} == rows
    assert sum(before["by_mode"].values()) == before["total"]
    assert sum(before["by_priority"].values()) == before["total"]
    rate = before["success_rate"]
    assert rate is None or (0.0 <= rate <= 1.0 and not math.isnan(rate))


async def _statistics(target: FuzzTarget) -> dict[str, Any]:
    stats = await target.client.call_tool("get_statistics", {})
    assert not stats.is_error, _text(stats)
    assert isinstance(stats.structured_content, dict)
    return stats.structured_content
