"""A stand-in for the `claude` CLI: replays real stream-json transcripts by scenario.

The scenario is named in the prompt (read from stdin, as `claude -p` does) as `scenario:NAME`,
optionally with a size (`scenario:giant:200` prints 200 MB). It records its argv, environment
and prompt to `.fake_claude.json` in its working directory (or to `$CLAUDE_FAKE_RECORD`), so
tests can check what it got.
`--version` answers like the real CLI. `scenario:edit` writes `ok.txt`: "broken" on a first
run, "fine" when resuming a session (`--resume`). Only the standard library: it starts fast.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "claude-stream"
RECORD = ".fake_claude.json"


def out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def replay(name: str, *, edit_result: dict[str, object] | None = None) -> None:
    for raw in (FIXTURES / name).read_text().splitlines():
        if not raw.strip():
            continue
        if edit_result is not None and json.loads(raw).get("type") == "result":
            obj = json.loads(raw)
            obj.update(edit_result)
            raw = json.dumps(obj)
        out(raw)


# Planner scenarios: what `--json-schema` runs report as `structured_output` (the tools are
# those of the in-memory gateway the planner tests set up: `s.echo`).
PLANS: dict[str, object] = {
    "plan_ok": {
        "steps": [
            {"id": "first", "description": "Echo one.", "server": "s", "tool": "echo", "arguments": {"n": 1}},
            {
                "id": "second",
                "description": "Echo what the first returned.",
                "server": "s",
                "tool": "echo",
                "arguments": {"n": {"$ref": "steps.first.structured.n"}},
                "depends_on": ["first"],
            },
        ]
    },
    "plan_invalid": {
        "steps": [
            {"id": "a", "server": "s", "tool": "nope", "arguments": {}, "depends_on": ["b"]},
            {"id": "b", "server": "s", "tool": "echo", "arguments": {"n": "two"}, "depends_on": ["a"]},
        ]
    },
    "plan_malformed": {"steps": "first echo, then echo again"},
}


def init_line() -> None:
    out((FIXTURES / "hang_sigterm.jsonl").read_text().splitlines()[0])


def result_line() -> str:
    return (FIXTURES / "hello.jsonl").read_text().splitlines()[-1]


def hang() -> None:
    while True:
        time.sleep(3600)


def spawn_grandchild(record: dict[str, object]) -> None:
    # Inherits our stdout and our process group, like a CLI's `sleep 300 &`.
    child = subprocess.Popen(["sleep", "300"])
    record["grandchild"] = child.pid


def spawn_daemon(record: dict[str, object]) -> None:
    # A double fork with setsid, as daemons do: the `sleep` leaves our process group and
    # session, and its parent exits, so it is nobody's child we know. It keeps our stdout.
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.setsid()
        daemon = os.fork()
        if daemon == 0:
            os.execvp("sleep", ["sleep", "300"])
        os.write(write_end, str(daemon).encode())
        os._exit(0)
    os.waitpid(middle, 0)
    os.close(write_end)
    record["daemon"] = int(os.read(read_end, 64))
    os.close(read_end)


def main() -> int:
    if sys.argv[1:] == ["--version"]:
        out("2.1.330 (Claude Code)")
        return 0
    prompt = sys.stdin.read()
    match = re.search(r"scenario:(\w+)(?::(\d+))?", prompt)
    scenario, size = (match.group(1), int(match.group(2) or 0)) if match else ("success", 0)
    record: dict[str, object] = {
        "argv": sys.argv[1:],
        "env": dict(os.environ),
        "prompt": prompt,
        "pid": os.getpid(),
        "pgid": os.getpgrp(),
    }
    if scenario.startswith("grandchild"):
        spawn_grandchild(record)
    if scenario.startswith("daemon"):
        spawn_daemon(record)
    # CLAUDE_FAKE_RECORD: somewhere that outlives the working directory (planner scratch dirs).
    Path(os.environ.get("CLAUDE_FAKE_RECORD", RECORD)).write_text(json.dumps(record))

    if scenario in ("success", "grandchild_exit", "daemon_exit"):
        replay("hello.jsonl")
        return 0
    if scenario == "edit":
        # A coding run: a first run writes a bug, a resumed session (a fix run) fixes it. The bug
        # names the scenario, so a check that prints it hands the fix run the scenario too.
        resumed = any(a.startswith("--resume") for a in sys.argv)
        Path("ok.txt").write_text("fine\n" if resumed else "broken (scenario:edit)\n")
        replay("hello.jsonl")
        return 0
    if scenario == "schema":
        replay("schema.jsonl")
        return 0
    if scenario in PLANS:
        plan = PLANS[scenario]
        replay("schema.jsonl", edit_result={"structured_output": plan, "result": json.dumps(plan)})
        return 0
    if scenario == "denials":
        replay("default_mode.jsonl")
        return 0
    if scenario == "fallback":
        replay("fallback.jsonl")
        return 0
    if scenario == "max_turns":
        replay("maxturns.jsonl")
        return 1
    if scenario == "budget":
        replay("budget.jsonl")
        return 1
    if scenario == "auth":
        replay("auth401_r1.jsonl")
        return 1
    if scenario == "api_error":
        replay("auth401_r1.jsonl", edit_result={"api_error_status": 500, "result": "API Error: 500 boom"})
        return 1
    if scenario == "rate_limit":
        replay("ratelimit429.jsonl")
        return 1
    if scenario == "rate_limit_no_time":
        replay("ratelimit429.jsonl", edit_result={"result": "Rate limited"})
        return 1
    if scenario == "is_error":
        replay(
            "hello.jsonl",
            edit_result={
                "is_error": True,
                "subtype": "error_during_execution",
                "result": "",
                "errors": ["No conversation found with session ID: nope"],
            },
        )
        return 1
    if scenario == "error_exit0":
        replay("hello.jsonl", edit_result={"is_error": True, "result": "something broke"})
        return 0
    if scenario == "no_result":
        init_line()
        return 0
    if scenario == "bad_flag":
        sys.stderr.write("error: unknown option '--frobnicate'\n")
        return 1
    if scenario in ("hang", "grandchild", "daemon"):
        init_line()
        hang()
    if scenario == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        init_line()
        hang()
    if scenario == "silence":
        time.sleep(60)
        replay("hello.jsonl")
        return 0
    if scenario == "ticking":
        init_line()
        for i in range(size or 10):
            time.sleep(0.05)
            out(json.dumps({"type": "system", "subtype": "status", "tick": i}))
        out(result_line())
        return 0
    if scenario == "giant":
        init_line()
        block = ("x" * 65_535 + "\n").encode()
        for _ in range((size or 200) * 16):  # 16 blocks of 64 KiB a megabyte
            sys.stdout.buffer.write(block)
        sys.stdout.flush()
        out(result_line())
        return 0
    if scenario == "giant_line":
        init_line()
        block = b"y" * 1_048_576
        for _ in range(size or 50):
            sys.stdout.buffer.write(block)
        sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
        out(result_line())
        return 0
    if scenario == "stderr_flood":
        init_line()
        line = "warning: " + "z" * 1000 + "\n"
        for _ in range((size or 5) * 1000):
            sys.stderr.write(line)
        sys.stderr.flush()
        out(result_line())
        return 0
    sys.stderr.write(f"fake claude: unknown scenario {scenario!r}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
