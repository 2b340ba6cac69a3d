"""Where a new task runs and what follows its run: isolation, check, fix attempts, on_success.

Each comes from the task itself, else from its agent, else from the configuration (only
isolation has a configured default: `worktrees.isolation`). The agent's `check_command`,
`on_success` and `fix_attempts` are defaults for its tasks that run isolated; a task run in
place ignores them. A task's own value that needs a worktree, on a task that has none, is
refused.
"""

from __future__ import annotations

from taskorch.domain import ExecutionMode, TaskSpec
from taskorch.domain.agents import Agent
from taskorch.domain.changes import Isolation, OnSuccess
from taskorch.errors import InvalidArgument

__all__ = ["settle_isolation"]


def settle_isolation(
    spec: TaskSpec, agent: Agent | None, configured: Isolation, *, attempts: bool = False
) -> TaskSpec:
    """`spec` with `isolation`, `check_command`, `on_success` and `fix_attempts` settled;
    `attempts`: it is one of several attempts at a task (`attempts_in_parallel`).

    Raises `InvalidArgument` for a standard task asking for a worktree (its worker works in its
    own checkout), for worktree-only settings on a task run in place, for `fix_attempts`
    without a check to fix, for `fix_attempts` without `auto_commit`, and for attempts that
    would not each have a worktree or would each merge (`on_success` merge). An attempt ignores
    its agent's `on_success` merge: the caller compares attempts and merges one."""
    asked = bool(spec.check_command) or spec.on_success is OnSuccess.MERGE or bool(spec.fix_attempts)
    in_place = {"isolation": Isolation.NONE, "on_success": OnSuccess.KEEP, "fix_attempts": 0}
    if spec.execution_mode is ExecutionMode.STANDARD and attempts:
        raise InvalidArgument(
            "attempts_in_parallel is for claude_code and custom tasks with isolation 'worktree': "
            "each attempt runs on its own branch"
        )
    if spec.execution_mode is ExecutionMode.STANDARD:
        if spec.isolation is Isolation.WORKTREE:
            raise InvalidArgument(
                "isolation 'worktree' is for claude_code and custom tasks, which the server runs; "
                "a standard task's worker works in its own checkout"
            )
        if asked:
            raise InvalidArgument(
                "check_command, fix_attempts and on_success 'merge' are for claude_code and custom "
                "tasks with isolation 'worktree'"
            )
        return spec.model_copy(update=in_place)
    isolation = spec.isolation or (agent.isolation if agent else None) or configured
    if attempts and isolation is not Isolation.WORKTREE:
        raise InvalidArgument(
            "attempts_in_parallel runs each attempt on its own branch: create the task with "
            "isolation 'worktree' (or an agent or config that sets it)"
        )
    if attempts and spec.on_success is OnSuccess.MERGE:
        raise InvalidArgument(
            "on_success 'merge' would merge every attempt that passes: with attempts_in_parallel "
            "keep the branches (on_success 'keep') and merge the best one with discard_others"
        )
    if isolation is not Isolation.WORKTREE:
        if asked:
            raise InvalidArgument(
                "check_command, fix_attempts and on_success 'merge' work on the task's worktree: "
                "create the task with isolation 'worktree'"
            )
        return spec.model_copy(update=in_place)
    defaults = agent or Agent(name="none")
    check_command = spec.check_command if spec.check_command is not None else defaults.check_command
    fix_attempts = spec.fix_attempts if spec.fix_attempts is not None else defaults.fix_attempts or 0
    from_agent = spec.fix_attempts is None and fix_attempts > 0
    source = f" (the default of agent {agent.name!r})" if from_agent and agent else ""
    if fix_attempts and not check_command:
        if not from_agent:
            raise InvalidArgument(
                "fix_attempts needs a check_command: a fix run gets the failed check's output"
            )
        fix_attempts = 0  # the agent's default has no check to fix here
    if fix_attempts and not spec.auto_commit:
        raise InvalidArgument(
            f"fix_attempts{source} needs auto_commit: a fix run starts from what the task's branch "
            "holds, so uncommitted work would be lost; set auto_commit true, or fix_attempts 0"
        )
    return spec.model_copy(
        update={
            "isolation": isolation,
            "check_command": check_command,
            "on_success": OnSuccess.KEEP
            if attempts
            else spec.on_success or defaults.on_success or OnSuccess.KEEP,
            "fix_attempts": fix_attempts,
        }
    )
