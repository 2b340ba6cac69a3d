"""`taskorch plans create QUERY [--steps FILE] [--planner NAME]`: a plan awaiting approval.

With `--steps`, the steps of a JSON file are checked and stored (planner `explicit`). Without,
a planner makes them in this command, chosen as `create_plan` chooses (`--planner`, else the
agent's planner, else `plans.planner`, else `claude_code`; `engine.planner_choice`): Claude Code
(its CLI run from here) or a `[planners.<name>]` model. The command waits until planning ends,
with progress lines on stderr, and prints the plan as `plans show` does. Ctrl-C (or SIGTERM)
while the planner works cancels the plan, so it is never left `planning`, and exits 130 (143 on
SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Final

import anyio
from pydantic import TypeAdapter

from taskorch.cli.common import EXIT_INTERRUPTED, fail, with_queue
from taskorch.cli.plans import print_plan
from taskorch.cli.render import clip
from taskorch.config import Settings
from taskorch.domain import TaskEvent
from taskorch.domain.plans import EXPLICIT, Plan, PlanStatus, StepSpec
from taskorch.engine.orchestrator import Orchestrator
from taskorch.errors import InvalidArgument, InvalidTransition, NotFound, StoreError
from taskorch.executors.base import EventSink

__all__ = ["STOPPED", "plans_create"]

_STEPS: Final = TypeAdapter(list[StepSpec])
STOPPED: Final = "planning stopped: `taskorch plans create` was interrupted (Ctrl-C)"
"""The reason kept on a plan whose planning the person stopped."""
_SAID_CHARS: Final = 100


def _read_steps(source: str) -> list[StepSpec]:
    """The steps in the JSON file `source` (`-`: stdin): a list of steps, or `{"steps": [...]}`."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).expanduser().read_text()
    except OSError as exc:
        raise InvalidArgument(f"cannot read the steps from {source!r}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"the steps in {source!r} are not JSON: {exc}") from None
    if isinstance(data, dict) and "steps" in data:
        data = data["steps"]
    return _STEPS.validate_python(data)


def plans_create(args: argparse.Namespace, settings: Settings) -> int:
    if args.steps is None and args.planner == EXPLICIT:
        return fail(
            f"--planner {EXPLICIT} takes the steps from --steps FILE: give them, or leave out --planner "
            "to have a planner make them",
            2,
        )
    if args.steps is None:
        # The steps are checked against the downstream servers' tools, and a planner is shown
        # them: reach the servers from here. Claude Code plans from here too.
        return with_queue(settings, lambda o: _planned(o, args), downstream=True, planning=True)
    steps = _read_steps(args.steps)

    async def action(orchestrator: Orchestrator) -> int:
        print_plan(await _create(orchestrator, args, steps), args, full=True)
        return 0

    # The steps are checked against the downstream servers' tools: reach them from here.
    return with_queue(settings, action, downstream=True)


async def _create(
    orchestrator: Orchestrator,
    args: argparse.Namespace,
    steps: list[StepSpec] | None,
    on_event: EventSink | None = None,
) -> Plan:
    """`create_plan` with the command line's arguments; waits until planning ends."""
    return await orchestrator.plans.create(
        args.query,
        steps,
        agent=args.agent,
        planner=args.planner,
        fail_fast=args.fail_fast,
        max_concurrency=args.max_concurrency,
        on_event=on_event,
        wait_seconds=None,
    )


def _event_line(event: TaskEvent) -> str:
    """A planner's progress report, in a few words."""
    round_ = event.data.get("round")
    again = f" (repair round {round_})" if isinstance(round_, int) and round_ > 0 else ""
    if event.type == "request":
        return f"asking the model{again}"
    if event.type == "answer":
        return f"the model answered{again}; checking its steps"
    text = event.data.get("text")
    said = " ".join(text.split()) if isinstance(text, str) else ""
    return f"{event.type}: {clip(said, _SAID_CHARS)}" if said else event.type


class _Progress:
    """Progress lines on stderr (none with --json), and the id of the plan being made."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.plan_id: str | None = None
        self.planner = "?"

    def _say(self, line: str) -> None:
        if not self.quiet:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    async def changed(self, plan: Plan) -> None:
        # In this command, the first plan stored `planning` is the one it makes.
        if self.plan_id is None and plan.status is PlanStatus.PLANNING:
            self.plan_id, self.planner = plan.id, plan.created_by
            self._say(f"plan {plan.id} is planning: planner {plan.created_by} is making its steps")

    async def event(self, event: TaskEvent) -> None:
        self._say(f"planner {self.planner}: {_event_line(event)}")


async def _planned(orchestrator: Orchestrator, args: argparse.Namespace) -> int:
    """Have the planner make the steps; wait for it (Ctrl-C cancels the plan)."""
    plans = orchestrator.plans
    progress = _Progress(quiet=args.json)
    made: Plan | None = None
    error: Exception | None = None
    interrupted = 0  # the signal that stopped the command

    async def make(scope: anyio.CancelScope) -> None:
        nonlocal made, error
        try:
            made = await _create(orchestrator, args, None, on_event=progress.event)
        except Exception as exc:  # raised below, outside the task group (never as a group)
            error = exc
        finally:
            scope.cancel()

    remove = plans.add_listener(progress.changed)
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with anyio.create_task_group() as tg:
                tg.start_soon(make, tg.cancel_scope)
                async for signum in signals:
                    interrupted = signum
                    if progress.plan_id is None:  # not stored yet: stop before it is
                        tg.cancel_scope.cancel()
                        break
                    # The planner stops and `create` returns the plan, cancelled; a plan that
                    # ended meanwhile is returned as it ended.
                    await _cancel(orchestrator, progress.plan_id)
                    break
    finally:
        remove()
    if error is not None:
        raise error
    status = EXIT_INTERRUPTED if interrupted in (0, signal.SIGINT) else 128 + interrupted
    if made is None and progress.plan_id is not None:
        # Stopped while the plan was being stored: the write finished and planning was cut off.
        await _cancel(orchestrator, progress.plan_id)
        made = await plans.get(progress.plan_id)
    if made is None:
        return fail("interrupted before the plan was stored; nothing was made", status)
    if interrupted and made.status in (PlanStatus.CANCELLED, PlanStatus.FAILED):
        return fail(f"planning stopped; plan {made.id} is {made.status.value}", status)
    print_plan(made, args, full=True)
    return 0


async def _cancel(orchestrator: Orchestrator, plan_id: str) -> None:
    """Cancel the plan this command is making (one that has ended meanwhile stays as it ended);
    a store that fails the cancel is reported in one line, the plan left to its lease."""
    try:
        with anyio.CancelScope(shield=True):
            await orchestrator.plans.cancel(plan_id, STOPPED)
    except (InvalidTransition, NotFound):
        pass
    except StoreError as exc:
        sys.stderr.write(f"taskorch: error: plan {plan_id} could not be cancelled: {exc}\n")
