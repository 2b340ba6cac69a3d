"""Whether a coding CLI is there and answers `--version`: the check every CLI executor makes.

A good answer is remembered for `HEALTH_CACHE_SECONDS`; a bad one is not, so a fix is seen at
once. The probe runs through the same supervised process as a task run (bounded in time, in
its own process group, held by the run containment).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Final

import anyio

from taskorch.executors.base import ExecutorHealth
from taskorch.executors.containment import Containment
from taskorch.executors.process import ProcessSpec, run_process
from taskorch.executors.run_command import resolve_program

__all__ = ["HEALTH_CACHE_SECONDS", "VersionCheck"]

HEALTH_CACHE_SECONDS: Final = 60.0


class VersionCheck:
    """Runs `<program> --version` for executor `name` (`label` names the CLI in messages).

    `hint` (how to install or point at the CLI) ends every failure message.
    """

    def __init__(
        self,
        name: str,
        label: str,
        program: str,
        env: Mapping[str, str],
        *,
        timeout: float,
        hint: str,
        containment: Containment | None = None,
    ) -> None:
        self.name = name
        self.label = label
        self.program = program
        self.env = env
        self.timeout = timeout
        self.hint = hint
        self.containment = containment
        self._healthy_until = -math.inf
        self._health: ExecutorHealth | None = None
        self._lock = anyio.Lock()

    def forget(self) -> None:
        """Drop a remembered good answer (the CLI failed to start after all)."""
        self._healthy_until = -math.inf

    def resolved(self) -> str:
        """The executable to run: `program` looked up on the child's PATH, else as configured."""
        return resolve_program(self.program, self.env) or self.program

    async def check(self) -> ExecutorHealth:
        async with self._lock:
            if self._health is not None and anyio.current_time() < self._healthy_until:
                return self._health
            health = await self._probe()
            self._health = health
            self._healthy_until = anyio.current_time() + HEALTH_CACHE_SECONDS if health.ok else -math.inf
            return health

    def _failed(self, message: str) -> ExecutorHealth:
        return ExecutorHealth(name=self.name, ok=False, message=f"{message}; {self.hint}")

    async def _probe(self) -> ExecutorHealth:
        program = resolve_program(self.program, self.env)
        if program is None:
            where = "(no executable file there)" if os.sep in self.program else "on PATH"
            return self._failed(f"{self.label} {self.program!r} not found {where}")
        spec = ProcessSpec(
            argv=[program, "--version"],
            cwd="/",  # any existing directory: `--version` reads no project files
            env=self.env,
            containment=self.containment,
            timeout=self.timeout,
            kill_grace=1.0,
            tail_bytes=4096,
        )
        try:
            proc = await run_process(spec)
        except OSError as exc:
            return self._failed(f"cannot run {program}: {exc}")
        version = proc.stdout_tail.strip().splitlines()[0] if proc.stdout_tail.strip() else None
        if proc.exit_code != 0 or version is None:
            why = (
                f"did not answer within {self.timeout:g} s"
                if proc.exit_code is None or proc.exit_code < 0
                else (f"exited with code {proc.exit_code}: {proc.stderr_tail.strip()[-300:] or 'no output'}")
            )
            return self._failed(f"`{program} --version` {why}")
        return ExecutorHealth(name=self.name, ok=True, version=version, message=f"{program}: {version}")
