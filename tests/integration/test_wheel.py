"""The wheel as a user installs it: built from this tree, installed into a fresh virtual
environment, `taskorch serve --transport http` started from there serves the web console and
its assets from inside the wheel (nothing from another site, no build step).

The wheel goes in with `--no-deps`; its dependencies come from this environment through a
`.pth` line, so the test is offline and checks what the wheel ships, not pip's resolver.
"""

from __future__ import annotations

import sys
import sysconfig
import zipfile
from pathlib import Path

import anyio
import httpx2
import pytest

from tests.serve_process import LISTENING, server_env, started_process

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def clean_env(home: Path) -> dict[str, str]:
    """This environment without `TASKORCH_*` settings and `PYTHONPATH` (this tree's sources)."""
    return {k: v for k, v in server_env(home).items() if k != "PYTHONPATH"}


async def build_wheel(out: Path, env: dict[str, str]) -> Path:
    """`python -m build --wheel` of this tree, without build isolation (offline)."""
    with anyio.fail_after(300):
        await anyio.run_process(
            [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO)],
            env=env,
        )
    (wheel,) = [Path(found) async for found in anyio.Path(out).glob("taskorch-*.whl")]
    return wheel


async def fresh_venv(path: Path, wheel: Path, env: dict[str, str]) -> Path:
    """A new virtual environment holding `wheel`; returns its bin directory."""
    python = path / "bin" / "python"
    with anyio.fail_after(300):
        await anyio.run_process([sys.executable, "-m", "venv", "--without-pip", str(path)], env=env)
        await anyio.run_process(
            [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
             "--quiet", "--disable-pip-version-check", str(wheel)],
            env=env,
        )  # fmt: skip
        found = await anyio.run_process(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env=env
        )
    site = found.stdout.decode().strip()
    # The dependencies (mcp, starlette, jinja2...), after the venv's own site-packages.
    (Path(site) / "deps-from-tests.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return path / "bin"


async def test_the_wheel_serves_the_console_and_its_assets_from_a_fresh_venv(tmp_path: Path) -> None:
    home, root = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    root.mkdir()
    env = clean_env(home)
    wheel = await build_wheel(tmp_path / "dist", env)
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "taskorch/server/web/static/console.js",
        "taskorch/server/web/static/console.css",
        "taskorch/server/web/templates/base.html",
        "taskorch/server/web/templates/board.html",
        "taskorch/py.typed",
    ):
        assert shipped in names, shipped
    assert not [n for n in names if n.endswith(".pyc") or "/tests/" in n]

    bin_dir = await fresh_venv(tmp_path / "venv", wheel, env)
    found = await anyio.run_process(
        [str(bin_dir / "python"), "-c", "import taskorch; print(taskorch.__file__)"], cwd=tmp_path, env=env
    )
    where = found.stdout.decode().strip()
    assert where.startswith(str(tmp_path / "venv")), where  # the wheel's copy, not this tree's

    command = [
        str(bin_dir / "taskorch"), "serve", "--transport", "http", "--port", "0",
        "--db", str(home / "tasks.db"), "--allowed-root", str(root),
    ]  # fmt: skip
    async with started_process(command, LISTENING, env, "server") as (_, stderr):
        assert stderr.match is not None
        url = stderr.match.group(1).decode()
        async with httpx2.AsyncClient(base_url=url, timeout=30) as http:
            assert (await http.get("/health")).status_code == 200
            # No token on loopback: the console is open, as the API is.
            page = await http.get("/console/")
            assert page.status_code == 200, page.text
            assert '<script src="/console/static/console.js"' in page.text
            assert "http://" not in page.text.replace(url, "")  # nothing from another site
            script = await http.get("/console/static/console.js")
            assert script.status_code == 200
            assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
            assert script.text == (REPO / "src/taskorch/server/web/static/console.js").read_text()
            style = await http.get("/console/static/console.css")
            assert style.status_code == 200
            assert style.headers["content-type"].startswith("text/css")
