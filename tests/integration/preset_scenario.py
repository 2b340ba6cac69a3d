"""One scenario with a real preset CLI (Codex, Gemini, opencode), run INSIDE a fresh network namespace.

`run_preset_scenario` (called by the tests, outside) spawns
`unshare --net -- python -m tests.integration.preset_scenario SPEC.json`; inside, `main` brings
the loopback up, serves the CLI's model-API stand-in on 127.0.0.1, and either runs the CLI
itself (`mode` "cli": `args`, `prompt` on stdin) or runs `runs` (RunRequest fields; with
`"resume_previous": true` the previous outcome's session id is resumed) through the executor
that `[executors.<preset>] preset = "<preset>"` builds, as the server does. It prints ONE JSON
summary line: `interfaces`, `requests` (what the stand-in received), `turns_left`, and
`outcomes` / `events` / `started`, or `exit_code` / `lines` / `stdout` / `stderr`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio

from tests.integration.claude_scenario import loopback_up
from tests.integration.netns import REPO
from tests.stub_gemini_api import GEMINI_SETTINGS, StubGeminiApi
from tests.stub_messages_api import StubMessagesApi, bind_loopback, serve
from tests.stub_responses_api import StubResponsesApi, codex_config

__all__ = ["CLIS", "run_preset_scenario"]

CLIS = {
    "codex": REPO / "node_modules" / ".bin" / "codex",
    "gemini": REPO / "node_modules" / ".bin" / "gemini",
    "opencode": REPO / "node_modules" / ".bin" / "opencode",
}
RUN_TIMEOUT = 60.0


async def run_preset_scenario(spec: dict[str, Any], scratch: Path) -> dict[str, Any]:
    """Run `spec` in a new network namespace; return the summary it printed."""
    for key in ("home", "cwd"):
        await anyio.Path(spec[key]).mkdir(parents=True, exist_ok=True)
    path = scratch / f"preset-scenario-{os.getpid()}-{id(spec)}.json"
    await anyio.Path(path).write_text(json.dumps(spec))
    command = ["unshare", "--net", "--", sys.executable, "-m", "tests.integration.preset_scenario", str(path)]
    with anyio.fail_after(spec.get("timeout", RUN_TIMEOUT) + 15):
        result = await anyio.run_process(command, cwd=REPO, check=False)
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, f"scenario process failed ({result.returncode}):\n{stderr}"
    summary: dict[str, Any] = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert summary["interfaces"] == ["lo"], f"not isolated: {summary['interfaces']}"
    return summary


def cli_env(spec: dict[str, Any], port: int) -> dict[str, str]:
    """An explicit environment: PATH and the locale from the caller, the rest made here."""
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "TZ") if key in os.environ}
    env["HOME"] = spec["home"]
    if spec["preset"] == "codex":
        codex_home = Path(spec["home"]) / ".codex"
        codex_home.mkdir(parents=True, exist_ok=True)
        (codex_home / "config.toml").write_text(codex_config(port))
        env |= {"CODEX_HOME": str(codex_home), "OPENAI_API_KEY": "sk-test"}
    elif spec["preset"] == "opencode":
        # opencode's built-in Anthropic provider, pointed at the Messages API stand-in.
        config = Path(spec["home"]) / "opencode.json"
        provider = {"anthropic": {"options": {"baseURL": f"http://127.0.0.1:{port}/v1"}}}
        config.write_text(json.dumps({"autoupdate": False, "share": "disabled", "provider": provider}))
        env |= {"OPENCODE_CONFIG": str(config), "ANTHROPIC_API_KEY": "sk-ant-test"}
    else:
        gemini_home = Path(spec["home"]) / ".gemini"
        gemini_home.mkdir(parents=True, exist_ok=True)
        (gemini_home / "settings.json").write_text(json.dumps(GEMINI_SETTINGS))
        env |= {"GEMINI_API_KEY": "test-key", "GOOGLE_GEMINI_BASE_URL": f"http://127.0.0.1:{port}"}
    env.update(spec.get("env", {}))
    return env


async def run_cli(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    command = [str(CLIS[spec["preset"]]), *spec.get("args", [])]
    result = await anyio.run_process(
        command, input=spec.get("prompt", "").encode(), cwd=spec["cwd"], env=env, check=False
    )
    stdout = result.stdout.decode(errors="replace")
    return {
        "exit_code": result.returncode,
        "lines": [json.loads(line) for line in stdout.splitlines() if line.startswith("{")],
        "stdout": stdout,
        "stderr": result.stderr.decode(errors="replace")[-4000:],
    }


async def run_executor(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    from taskorch.config import load_settings
    from taskorch.domain import TaskEvent
    from taskorch.executors.base import RunRequest, RunStarted
    from taskorch.executors.registry import build_executors

    preset = spec["preset"]
    settings = load_settings(
        env={"HOME": spec["home"]},
        overrides={
            "executors": {preset: {"preset": preset, "path": str(CLIS[preset]), **spec.get("settings", {})}},
            "security": {"allowed_roots": [spec["cwd"]]},
            "runs": {"log_dir": str(Path(spec["home"]) / "logs")},
        },
    )
    executor = build_executors(settings, env)[preset]
    outcomes: list[dict[str, Any]] = []
    events: list[list[dict[str, Any]]] = []
    started: list[dict[str, Any]] = []

    async def on_start(run: RunStarted) -> None:
        started.append(run.model_dump(mode="json"))

    for run in spec["runs"]:
        fields = {k: v for k, v in run.items() if k != "resume_previous"}
        if run.get("resume_previous"):
            fields["resume_session_id"] = outcomes[-1]["session_id"]
        seen: list[dict[str, Any]] = []

        async def on_event(event: TaskEvent, seen: list[dict[str, Any]] = seen) -> None:
            seen.append(event.model_dump(mode="json"))

        outcome = await executor.run(RunRequest(**fields), on_event=on_event, on_start=on_start)
        outcomes.append(outcome.model_dump(mode="json"))
        events.append(seen)
    return {"outcomes": outcomes, "events": events, "started": started}


async def main(spec: dict[str, Any]) -> None:
    interfaces = loopback_up()
    turns = list(spec.get("turns", []))
    stubs: dict[str, type[StubResponsesApi | StubGeminiApi | StubMessagesApi]] = {
        "codex": StubResponsesApi,
        "gemini": StubGeminiApi,
        "opencode": StubMessagesApi,
    }
    stub = stubs[spec["preset"]](turns=turns)
    sock = bind_loopback()
    env = cli_env(spec, sock.getsockname()[1])
    stop = anyio.Event()
    summary: dict[str, Any] = {"interfaces": interfaces}
    async with anyio.create_task_group() as tg:
        tg.start_soon(serve, stub, sock, stop)  # any stub with an `app()`
        try:
            with anyio.fail_after(float(spec.get("timeout", RUN_TIMEOUT))):
                if spec.get("mode") == "cli":
                    summary.update(await run_cli(spec, env))
                else:
                    summary.update(await run_executor(spec, env))
        finally:
            stop.set()
    summary["requests"] = stub.requests
    summary["turns_left"] = stub.turns_left
    sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    anyio.run(main, json.loads(Path(sys.argv[1]).read_text()))
