"""Settings precedence: defaults < TOML file < TASKORCH_* environment < command-line flags."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from taskorch.config import (
    AgentSettings,
    ApiPlannerSettings,
    CustomExecutorSettings,
    DownstreamSseSettings,
    DownstreamStdioSettings,
    DownstreamStreamableHttpSettings,
    DownstreamWebSocketSettings,
    Settings,
    default_config_path,
    default_data_dir,
    load_settings,
)
from taskorch.errors import ConfigError

TOKEN = "0123456789abcdef0123"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment with a home of its own and no TASKORCH_* variables."""
    return {"HOME": str(tmp_path)}


def test_defaults_without_file_or_environment(env: dict[str, str]) -> None:
    settings = load_settings(env=env)
    assert settings == Settings()
    assert settings.server.host == "127.0.0.1"
    assert settings.server.transport == "stdio"
    assert settings.security.token is None


def test_the_default_database_is_in_the_per_user_data_dir(env: dict[str, str], tmp_path: Path) -> None:
    url = load_settings(env=env).database_url(env)
    if os.name == "posix" and os.uname().sysname == "Linux":
        assert url == str(tmp_path / ".local" / "share" / "taskorch" / "taskorch.db")
    assert Path(url).parent == default_data_dir(env)
    xdg = {**env, "XDG_DATA_HOME": str(tmp_path / "data")}
    if os.uname().sysname == "Linux":
        assert Settings().database_url(xdg) == str(tmp_path / "data" / "taskorch" / "taskorch.db")


def test_the_default_config_file_is_read_when_present(env: dict[str, str], tmp_path: Path) -> None:
    path = default_config_path(env)
    path.parent.mkdir(parents=True)
    write(path, "[server]\nport = 9100\n")
    assert load_settings(env=env).server.port == 9100


def test_each_layer_overrides_the_one_below(env: dict[str, str], tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.toml", '[server]\nport = 9001\nhost = "127.0.0.2"\n[storage]\nurl = "file.db"\n'
    )
    assert load_settings(env=env).server.port == 8765  # default

    from_file = load_settings(config_file=config, env=env)
    assert (from_file.server.port, from_file.server.host, from_file.storage.url) == (
        9001,
        "127.0.0.2",
        "file.db",
    )

    environ = {**env, "TASKORCH_SERVER__PORT": "9002", "TASKORCH_DB": "env.db"}
    from_env = load_settings(config_file=config, env=environ)
    assert (from_env.server.port, from_env.server.host, from_env.storage.url) == (9002, "127.0.0.2", "env.db")

    flags: dict[str, dict[str, Any]] = {"server": {"port": 9003, "host": None}, "storage": {"url": "flag.db"}}
    from_flags = load_settings(config_file=config, env=environ, overrides=flags)
    assert (from_flags.server.port, from_flags.server.host, from_flags.storage.url) == (
        9003,
        "127.0.0.2",
        "flag.db",
    )


def test_taskorch_config_names_the_file(env: dict[str, str], tmp_path: Path) -> None:
    config = write(tmp_path / "elsewhere.toml", "[tasks]\nlease_seconds = 42\n")
    assert load_settings(env={**env, "TASKORCH_CONFIG": str(config)}).tasks.lease_seconds == 42


def test_a_named_config_file_must_exist(env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml does not exist"):
        load_settings(config_file=tmp_path / "missing.toml", env=env)


def test_a_malformed_file_is_named(env: dict[str, str], tmp_path: Path) -> None:
    config = write(tmp_path / "bad.toml", "[server\nport = 1\n")
    with pytest.raises(ConfigError, match=r"cannot read config file .*bad\.toml"):
        load_settings(config_file=config, env=env)


def test_unknown_keys_are_rejected_by_name_and_source(env: dict[str, str], tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "[server]\nprot = 1\n[sevrer]\nport = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=config, env=env)
    message = str(caught.value)
    assert f"server.prot (from {config}): unknown key" in message
    assert "sevrer (from" in message
    assert "unknown section" in message

    with pytest.raises(ConfigError, match=r"server\.colour \(from TASKORCH_SERVER__COLOUR\): unknown key"):
        load_settings(env={**env, "TASKORCH_SERVER__COLOUR": "blue"})
    with pytest.raises(ConfigError, match=r"server\.colour \(from command line\): unknown key"):
        load_settings(env=env, overrides={"server": {"colour": "blue"}})


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "TASKORCH_SERVER__PORT",
            "eighty",
            r"server\.port \(from TASKORCH_SERVER__PORT\): .*integer.*'eighty'",
        ),
        ("TASKORCH_SERVER__PORT", "70000", r"server\.port .*65535"),
        ("TASKORCH_SERVER__TRANSPORT", "carrier-pigeon", r"server\.transport .*'stdio' or 'http'"),
        ("TASKORCH_SERVER__MAX_BODY_BYTES", "10", r"server\.max_body_bytes .*1024"),
        ("TASKORCH_TASKS__LEASE_SECONDS", "-1", r"tasks\.lease_seconds .*greater than 0"),
        ("TASKORCH_LOGGING__LEVEL", "chatty", r"logging\.level"),
        ("TASKORCH_STORAGE__SYNCHRONOUS", "OFF", r"storage\.synchronous"),
        (
            "TASKORCH_RUNS__CONTAINMENT",
            "jail",
            r"runs\.containment .*'auto', 'cgroup', 'subreaper' or 'none'",
        ),
    ],
)
def test_bad_values_are_named(env: dict[str, str], variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(env={**env, variable: value})


def test_the_token_has_a_minimum_length_and_is_never_echoed(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"security\.token .*at least 16 characters") as caught:
        load_settings(env={**env, "TASKORCH_TOKEN": "hunter2-secret"})
    assert "hunter2-secret" not in str(caught.value)
    settings = load_settings(env={**env, "TASKORCH_TOKEN": TOKEN})
    assert settings.security.token == TOKEN
    assert TOKEN not in repr(settings)


@pytest.mark.parametrize(
    ("shortcut", "full", "section", "key"),
    [("TASKORCH_TOKEN", "TASKORCH_SECURITY__TOKEN", "security", "token"),
     ("TASKORCH_DB", "TASKORCH_STORAGE__URL", "storage", "url")],
)  # fmt: skip
def test_a_full_variable_name_wins_over_its_shortcut(
    env: dict[str, str], shortcut: str, full: str, section: str, key: str
) -> None:
    for environ in ({**env, shortcut: "s" * 16, full: "f" * 16}, {**env, full: "f" * 16, shortcut: "s" * 16}):
        settings = load_settings(env=environ)
        assert getattr(getattr(settings, section), key) == "f" * 16
    assert getattr(getattr(load_settings(env={**env, shortcut: "s" * 16}), section), key) == "s" * 16


def test_list_variables(env: dict[str, str], tmp_path: Path) -> None:
    roots = os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])
    environ = {
        **env,
        "TASKORCH_SECURITY__ALLOWED_ROOTS": roots,
        "TASKORCH_SERVER__ALLOWED_HOSTS": "tasks.example, other.example:8443,",
        "TASKORCH_SERVER__ALLOWED_ORIGINS": '["https://app.example", "http://dev.example:*"]',
    }
    settings = load_settings(env=environ)
    assert settings.security.allowed_roots == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert settings.server.allowed_hosts == ["tasks.example", "other.example:8443"]
    assert settings.server.allowed_origins == ["https://app.example", "http://dev.example:*"]


def test_a_malformed_json_list_is_named(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="TASKORCH_SERVER__ALLOWED_HOSTS: not a JSON array"):
        load_settings(env={**env, "TASKORCH_SERVER__ALLOWED_HOSTS": '["a",'})
    with pytest.raises(ConfigError, match="JSON array of strings"):
        load_settings(env={**env, "TASKORCH_SERVER__ALLOWED_HOSTS": "[1, 2]"})


def test_empty_variables_count_as_unset(env: dict[str, str], tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "[server]\nport = 9001\n")
    settings = load_settings(
        config_file=config, env={**env, "TASKORCH_SERVER__PORT": "", "TASKORCH_TOKEN": " "}
    )
    assert settings.server.port == 9001
    assert settings.security.token is None


def test_unrelated_variables_are_ignored(env: dict[str, str]) -> None:
    assert load_settings(env={**env, "TASKORCH_SOMETHING_ELSE": "x", "OTHER": "y"}) == Settings()


def test_the_log_level_is_case_insensitive(env: dict[str, str]) -> None:
    assert load_settings(env=env, overrides={"logging": {"level": "debug"}}).logging.level == "DEBUG"


def test_allowed_roots_default_to_home_and_are_resolved(env: dict[str, str], tmp_path: Path) -> None:
    assert Settings().resolved_allowed_roots(env) == [os.path.realpath(tmp_path)]
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    settings = load_settings(env=env, overrides={"security": {"allowed_roots": [str(link)]}})
    assert settings.resolved_allowed_roots(env) == [os.path.realpath(tmp_path)]


def test_the_example_config_file_is_valid(env: dict[str, str]) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "taskorch.example.toml"
    settings = load_settings(config_file=example, env=env)
    assert settings.server.host == "127.0.0.1"
    assert settings.agents["reviewer"].denied_tools == ["github.merge_*", "Bash"]
    assert settings.planners["local"].url() == "http://127.0.0.1:11434/v1"


def test_agents_come_from_config_tables_and_unknown_agent_keys_are_refused(
    env: dict[str, str], tmp_path: Path
) -> None:
    config = write(tmp_path / "a.toml", '[agents.ops]\nmodel = "opus"\nallowed_tools = ["fs.*"]\n')
    assert load_settings(config_file=config, env=env).agents["ops"].allowed_tools == ["fs.*"]
    bad = write(tmp_path / "b.toml", "[agents.ops]\nmodle = 1\n")
    with pytest.raises(ConfigError, match=r"agents\.ops\.modle .*unknown key"):
        load_settings(config_file=bad, env=env)


def test_the_configuration_docs_list_every_key() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    for key in AgentSettings.model_fields:
        assert f"`agents.<name>.{key}`" in docs, f"docs/configuration.md misses agents.<name>.{key}"
    for section_name, section in Settings.model_fields.items():
        if section_name == "downstream":
            continue  # a table of tables, checked below
        annotation = section.annotation
        assert annotation is not None
        if section_name == "executors":  # named tables, TOML only: `executors.<name>.<key>`
            for key in CustomExecutorSettings.model_fields:
                assert f"`executors.<name>.{key}`" in docs, f"docs/configuration.md misses executors.{key}"
            continue
        if section_name == "planners":  # named tables, TOML only: `planners.<name>.<key>`
            for key in ApiPlannerSettings.model_fields:
                assert f"`planners.<name>.{key}`" in docs, f"docs/configuration.md misses planners.{key}"
            continue
        if section_name == "agents":
            continue  # a table of tables, checked above
        for key in annotation.model_fields:
            assert f"`{section_name}.{key}`" in docs, f"docs/configuration.md misses {section_name}.{key}"
            assert f"TASKORCH_{section_name.upper()}__{key.upper()}" in docs


DOWNSTREAM_SHAPES = (
    DownstreamStdioSettings,
    DownstreamSseSettings,
    DownstreamStreamableHttpSettings,
    DownstreamWebSocketSettings,
)


def test_the_configuration_docs_list_every_downstream_key() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    for shape in DOWNSTREAM_SHAPES:
        for key in shape.model_fields:
            assert f"`downstream.<name>.{key}`" in docs, (
                f"docs/configuration.md misses downstream.<name>.{key}"
            )


def test_the_example_file_shows_every_downstream_transport(env: dict[str, str]) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "taskorch.example.toml"
    servers = load_settings(config_file=example, env=env).downstream
    assert {s.transport for s in servers.values()} >= {"stdio", "streamable_http", "websocket"}


def test_downstream_servers_are_typed_by_transport(env: dict[str, str], tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.toml",
        """
[downstream.files]
transport = "stdio"
command = "npx"
args = ["-y", "server-filesystem", "/tmp"]
env = { DEBUG = "1" }
cwd = "/tmp"
call_timeout_seconds = 60

[downstream.search]
transport = "streamable_http"
url = "https://search.example/mcp"
headers = { Authorization = "Bearer abc" }

[downstream.old]
transport = "sse"
url = "http://127.0.0.1:9000/sse"
enabled = false

[downstream.live]
transport = "websocket"
url = "ws://127.0.0.1:9100/mcp"
connect_timeout_seconds = 5
""",
    )
    servers = load_settings(config_file=config, env=env).downstream
    files = servers["files"]
    assert isinstance(files, DownstreamStdioSettings)
    assert (files.command, files.args, files.env, files.cwd) == (
        "npx",
        ["-y", "server-filesystem", "/tmp"],
        {"DEBUG": "1"},
        "/tmp",
    )
    assert (files.call_timeout_seconds, files.connect_timeout_seconds, files.enabled) == (60, 30, True)
    search = servers["search"]
    assert isinstance(search, DownstreamStreamableHttpSettings)
    assert search.headers == {"Authorization": "Bearer abc"}
    assert "Bearer abc" not in repr(search)
    old = servers["old"]
    assert isinstance(old, DownstreamSseSettings)
    assert not old.enabled
    live = servers["live"]
    assert isinstance(live, DownstreamWebSocketSettings)
    assert live.connect_timeout_seconds == 5


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('[downstream.a]\ncommand = "x"\n', r"downstream\.a \(from .*\): needs transport = one of 'stdio'"),
        ('[downstream.a]\ntransport = "ws"\n', r"downstream\.a .*transport must be one of .*'websocket'"),
        ('[downstream.a]\ntransport = "stdio"\n', r"downstream\.a\.command .*Field required"),
        (
            '[downstream.a]\ntransport = "stdio"\ncommand = "x"\ncomand = "y"\n',
            r"downstream\.a\.comand .*unknown key",
        ),
        (
            '[downstream.a]\ntransport = "websocket"\nurl = "http://h/ws"\n',
            r"downstream\.a\.url .*ws:// or wss://",
        ),
        ('[downstream.a]\ntransport = "sse"\nurl = "h/sse"\n', r"downstream\.a\.url .*http:// or https://"),
        (
            '[downstream.a]\ntransport = "streamable_http"\nurl = "http://h/mcp"\ncall_timeout_seconds = 0\n',
            r"downstream\.a\.call_timeout_seconds .*greater than 0",
        ),
        ('[downstream."a b"]\ntransport = "stdio"\ncommand = "x"\n', r"server name 'a b' must be"),
    ],
)
def test_bad_downstream_tables_are_named(
    env: dict[str, str], tmp_path: Path, table: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(config_file=write(tmp_path / "c.toml", table), env=env)


def test_downstream_secrets_are_never_echoed(env: dict[str, str], tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.toml",
        '[downstream.a]\ntransport = "sse"\nurl = "http://h/sse"\nheaders = { X = ["hunter2-secret"] }\n',
    )
    with pytest.raises(ConfigError, match=r"downstream\.a\.headers\.X") as caught:
        load_settings(config_file=config, env=env)
    assert "hunter2-secret" not in str(caught.value)


def test_downstream_servers_cannot_come_from_the_environment(env: dict[str, str]) -> None:
    with pytest.raises(
        ConfigError, match="TASKORCH_DOWNSTREAM__FILES: downstream servers are configured in the config"
    ):
        load_settings(env={**env, "TASKORCH_DOWNSTREAM__FILES": "npx"})


def test_executor_templates_and_run_settings_are_read_from_the_file(
    env: dict[str, str], tmp_path: Path
) -> None:
    config = write(
        tmp_path / "c.toml",
        '[executors.codex]\nargv = ["codex", "exec", "--", "{prompt}"]\noutput = "jsonl"\n'
        '[claude_code]\nmodel = "opus"\n[runs]\nlog_dir = "~/runlogs"\n',
    )
    settings = load_settings(config_file=config, env=env)
    codex = settings.executors["codex"]
    assert isinstance(codex, CustomExecutorSettings)
    assert codex.argv == ["codex", "exec", "--", "{prompt}"]
    assert codex.success_exit_codes == [0]
    assert settings.claude_code.model == "opus"
    assert settings.claude_code.permission_mode == "acceptEdits"
    assert settings.run_log_dir(env) == Path(os.path.expanduser("~/runlogs"))
    assert Settings().run_log_dir(env) == default_data_dir(env) / "logs"


def test_claude_code_lists_come_from_the_environment(env: dict[str, str]) -> None:
    settings = load_settings(
        env={
            **env,
            "TASKORCH_CLAUDE_CODE__EXTRA_ARGS": '["--fallback-model", "sonnet"]',
            "TASKORCH_CLAUDE_CODE__ENV_PASSTHROUGH": "AWS_*,MY_VAR",
        }
    )
    assert settings.claude_code.extra_args == ["--fallback-model", "sonnet"]
    assert settings.claude_code.env_passthrough == ["AWS_*", "MY_VAR"]


def test_a_check_s_extra_variables_come_from_the_environment_and_never_the_server_s(
    env: dict[str, str],
) -> None:
    settings = load_settings(env={**env, "TASKORCH_WORKTREES__CHECK_ENV_PASSTHROUGH": "DATABASE_URL,AWS_*"})
    assert settings.worktrees.check_env_passthrough == ["DATABASE_URL", "AWS_*"]
    with pytest.raises(ConfigError, match=r"worktrees\.check_env_passthrough .*TASKORCH_\* variables carry"):
        load_settings(env={**env, "TASKORCH_WORKTREES__CHECK_ENV_PASSTHROUGH": "TASKORCH_DB"})


def test_the_servers_own_variables_cannot_be_passed_to_a_cli(env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"claude_code\.env_passthrough .*TASKORCH_\* variables carry"):
        load_settings(env=env, overrides={"claude_code": {"env_passthrough": ["TASKORCH_DB"]}})
    config = write(tmp_path / "c.toml", '[executors.x]\nargv = ["x"]\nenv = { TASKORCH_TOKEN = "t" }\n')
    with pytest.raises(ConfigError, match=r"executors\.x\.env"):
        load_settings(config_file=config, env=env)
    with pytest.raises(ConfigError, match=r"executors\.x\.argv"):
        load_settings(config_file=write(tmp_path / "d.toml", "[executors.x]\nargv = []\n"), env=env)


def test_a_config_agent_with_a_tool_pattern_that_could_be_an_option_is_refused_by_key(
    env: dict[str, str], tmp_path: Path
) -> None:
    config = write(
        tmp_path / "c.toml",
        '[agents.reviewer]\nallowed_tools = ["Read", "--dangerously-skip-permissions"]\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=config, env=env)
    message = str(caught.value)
    assert f"agents.reviewer.allowed_tools.1 (from {config})" in message
    assert "starts with '-'" in message
    assert "Bash(git diff:*)" in message  # what is accepted, by example


@pytest.mark.parametrize(
    ("section", "values", "key"),
    [
        ("agents", {"a": {"denied_tools": ["--permission-mode=plan"]}}, "agents.a.denied_tools.0"),
        ("agents", {"a": {"denied_tools": ["Bash Edit"]}}, "agents.a.denied_tools.0"),
        ("agents", {"a": {"model": "--dangerously-skip-permissions"}}, "agents.a.model"),
        ("claude_code", {"model": "opus --verbose"}, "claude_code.model"),
        ("claude_code", {"permission_mode": "acceptEdits --dangerously-skip-permissions"},
         "claude_code.permission_mode"),
        ("plans", {"planner_model": "-x"}, "plans.planner_model"),
        ("executors", {"x": {"argv": ["x", "{prompt}"], "model": "--x"}}, "executors.x.model"),
        ("executors", {"x": {"argv": ["{model}", "{prompt}"]}}, "executors.x.argv"),
        ("executors", {"x": {"argv": ["run-{prompt}"]}}, "executors.x.argv"),
    ],
)  # fmt: skip
def test_values_that_become_cli_arguments_have_a_grammar(
    env: dict[str, str], section: str, values: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{key} (from command line)")):
        load_settings(env=env, overrides={section: values})


@pytest.mark.parametrize(
    ("arg", "instead"),
    [
        ("--dangerously-skip-permissions", 'permission_mode = "bypassPermissions"'),
        ("--allow-dangerously-skip-permissions", 'permission_mode = "bypassPermissions"'),
        ("--permission-mode=bypassPermissions", "claude_code.permission_mode"),
        ("--permission-mode", "claude_code.permission_mode"),
        ("--allowedTools", "give the tools to an agent"),
        ("--disallowed-tools=Bash", "give the tools to an agent"),
        ("--mcp-config", "planning runs"),
        ("--resume", "continue_from"),
        ("--output-format=text", "stream-json"),
        ("--model=opus", "claude_code.model"),
    ],
)
def test_extra_args_may_not_repeat_a_flag_taskorch_sets(env: dict[str, str], arg: str, instead: str) -> None:
    with pytest.raises(ConfigError, match=r"claude_code\.extra_args") as caught:
        load_settings(env=env, overrides={"claude_code": {"extra_args": ["--fallback-model", "sonnet", arg]}})
    assert instead in str(caught.value)


def test_extra_args_for_flags_taskorch_leaves_alone_are_kept(env: dict[str, str]) -> None:
    extra = ["--fallback-model", "sonnet", "--add-dir=/srv/shared", "--setting-sources", "user"]
    settings = load_settings(env=env, overrides={"claude_code": {"extra_args": extra}})
    assert settings.claude_code.extra_args == extra


def test_planners_come_from_config_tables_by_a_plain_name_and_never_hold_a_key(
    env: dict[str, str], tmp_path: Path
) -> None:
    good = write(
        tmp_path / "p.toml",
        '[plans]\nplanner = "local"\n[planners.local]\nkind = "openai"\nmodel = "qwen2.5-coder:7b"\n'
        'base_url = "http://127.0.0.1:11434/v1/"\n',
    )
    settings = load_settings(config_file=good, env=env)
    assert settings.plans.planner == "local"
    assert settings.planners["local"].url() == "http://127.0.0.1:11434/v1"
    assert settings.planners["local"].api_key_env is None

    literal = write(
        tmp_path / "k.toml", '[planners.x]\nkind = "openai"\nmodel = "m"\napi_key = "sk-secret-1"\n'
    )
    with pytest.raises(ConfigError, match="a key never goes in the config file") as caught:
        load_settings(config_file=literal, env=env)
    assert "sk-secret-1" not in str(caught.value)
    in_env_field = write(
        tmp_path / "e.toml", '[planners.x]\nkind = "openai"\nmodel = "m"\napi_key_env = "sk-s3cret"\n'
    )
    with pytest.raises(ConfigError, match="NAME of the environment variable") as caught:
        load_settings(config_file=in_env_field, env=env)
    assert "sk-s3cret" not in str(caught.value)
    for name in ("Bad", "claude_code", "a b", "x" * 40, "-x", "é"):
        with pytest.raises(ConfigError, match="planner name"):
            load_settings(env=env, overrides={"planners": {name: {"kind": "openai", "model": "m"}}})
    for url in ("ftp://h/v1", "http://user:pw@h/v1", "http://h/v1?key=1", "h:11434"):
        with pytest.raises(ConfigError, match="base_url must be"):
            load_settings(
                env=env, overrides={"planners": {"x": {"kind": "openai", "model": "m", "base_url": url}}}
            )
    with pytest.raises(ConfigError, match=r"plans\.planner 'nope' is not a planner; configured: claude_code"):
        load_settings(env={**env, "TASKORCH_PLANS__PLANNER": "nope"})
    with pytest.raises(ConfigError, match="TASKORCH_PLANNERS__X: planners are configured in the config"):
        load_settings(env={**env, "TASKORCH_PLANNERS__X": "openai"})
