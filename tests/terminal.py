"""A command on a real terminal: tmux on a private socket, and what its pane shows.

For tests of full-screen commands (`taskorch tasks watch`) and for the screenshot script: the
text is what a person sees, read with `capture-pane`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["Pane", "require_tmux", "tmux_pane"]

POLL_SECONDS = 0.05


def require_tmux() -> None:
    """Skip without tmux (fail under CI, which installs it: see .ci/run)."""
    if shutil.which("tmux") is None:
        message = "tmux is missing: run `apt-get install tmux`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


class Pane:
    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def tmux(self, *argv: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *argv], capture_output=True, text=True, timeout=30, check=True
        )
        return done.stdout

    def text(self) -> str:
        """What the pane shows now, line by line, trailing blanks removed."""
        lines = [line.rstrip() for line in self.tmux("capture-pane", "-p", "-t", "main").split("\n")]
        return "\n".join(lines).rstrip("\n")

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "main", *keys)

    def wait_for(self, pattern: str, seconds: float = 30.0) -> str:
        """The pane's text once `pattern` (a regex) is found in it; fails the test after `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            text = self.text()
            if re.search(pattern, text, re.M):
                return text
            if time.monotonic() > deadline:
                pytest.fail(f"the pane never showed {pattern!r}; it shows:\n{text}")
            time.sleep(POLL_SECONDS)


@contextmanager
def tmux_pane(
    command: Sequence[str], env: Mapping[str, str], directory: Path, *, width: int = 110, height: int = 20
) -> Iterator[Pane]:
    """Run `command` in a `width` x `height` tmux pane; afterwards the shell prints `[exit N]`
    and whether the terminal is back in canonical (line) mode, then waits to be read.

    bash, not sh: after Ctrl-C, bash carries on when the command handled the signal and exited
    on its own, so its status can be read."""
    require_tmux()
    socket = directory / "tmux.sock"
    script = (
        f'{shlex.join(command)}; echo "[exit $?]"; '
        "stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon; sleep 600"
    )
    pane = Pane(socket)
    subprocess.run(
        [
            "tmux",
            "-S",
            str(socket),
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            str(width),
            "-y",
            str(height),
            "bash",
            "-c",
            script,
        ],
        env={**env, "TERM": "xterm-256color"},
        check=True,
        timeout=30,
    )
    pane.tmux("set-option", "-t", "main", "remain-on-exit", "on")  # a pane that died can still be read
    try:
        yield pane
    finally:
        subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True, timeout=30)
