"""The orchestrator: the one object graph a process builds at start and every surface shares."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial

import anyio

from taskorch.config import PresetExecutorSettings, Settings
from taskorch.downstream.base import ToolGateway
from taskorch.engine.agents import AgentRegistry
from taskorch.engine.plan_service import PlanService
from taskorch.engine.processes import Instance
from taskorch.engine.queue import TaskQueue
from taskorch.engine.scheduler import Scheduler
from taskorch.engine.services import ProcessTable, Service, Upkeep
from taskorch.engine.task_review import TaskReview
from taskorch.executors.base import CLAUDE_CODE, CheckRunner, Executor
from taskorch.executors.containment.base import Containment
from taskorch.planning.base import Planner
from taskorch.storage.base import Store
from taskorch.worktrees.base import Workspaces

__all__ = ["Orchestrator"]


class Orchestrator:
    """Owns the store and the engine's background work: the lease reaper, the scheduler of
    server-run tasks, and plan executions.

    It is given its parts; `taskorch.app` builds them from the settings (the store, the
    executors, the downstream pool, the planner, the containment, the upkeep) and this object
    only uses them through their protocols. Tests build one with
    `taskorch.testing.orchestrator_for_tests`.

    `downstream` is the gateway to downstream MCP servers (None: none configured); it may be
    set after construction, before `running()`. `services` are kept up (their `running()`
    entered) while the orchestrator runs, e.g. the downstream pool's connections.
    `step_limiter` bounds plan steps running at once across every plan
    (`limits.max_concurrent_steps`).

    Build it once per process and share it: over SSE the MCP SDK enters its lifespan once per
    connection, so nothing here may be built inside that lifespan. `executors` maps executor
    names (`claude_code`, configured custom names) to the executors that run those tasks.
    `planner` makes steps for create_plan calls without steps (None: callers must give steps);
    `planners` are the `[planners.<name>]` ones, by name.
    `containment` is what the executors hold their runs' processes with (from
    `open_containment`; `GroupOnly()` where they use process groups alone); the orchestrator
    keeps it up while its scheduler runs and closes it after. `processes` is the host's
    process table (`ProcFs`), read to tell this server instance apart and to recover runs an
    earlier one left. `upkeep` runs beside the scheduler (e.g. pruning run logs). With
    `run_plan_tasks` False, the task of a plan's claude_code step is only queued, for
    whichever worker or server runs tasks (what a CLI command running a plan does: it has no
    executors). `workspaces` makes the worktrees of isolated runs (None: such tasks fail, and
    review says it cannot); `checks` runs their `check_command`s (None: a check fails, saying
    this server cannot run checks).
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        containment: Containment,
        processes: ProcessTable,
        upkeep: Sequence[Upkeep] = (),
        clock: Callable[[], float] = time.time,
        downstream: ToolGateway | None = None,
        services: Sequence[Service] = (),
        executors: Mapping[str, Executor] | None = None,
        instance: Instance | None = None,
        planner: Planner | None = None,
        planners: Mapping[str, Planner] | None = None,
        run_plan_tasks: bool = True,
        workspaces: Workspaces | None = None,
        checks: CheckRunner | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.containment = containment
        """What holds the processes of this process's runs."""
        self.upkeep = list(upkeep)
        """What runs beside the scheduler (see `running`)."""
        self.queue = TaskQueue(store, settings, clock=clock)
        self.downstream = downstream
        """The downstream MCP servers' tools, if this process has a gateway to them."""
        self.services = list(services)
        """What runs for as long as the orchestrator does (see `running`)."""
        self.agents = AgentRegistry(store, settings)
        # A claude_code task whose agent names another executor is queued for that executor.
        self.queue.agent_executor = self.agents.executor_of
        self.queue.agent_of = self.agents.find
        # Claude Code and the presets continue sessions; command templates do not.
        self.queue.resuming_executors = frozenset(
            {
                CLAUDE_CODE,
                *(n for n, e in settings.executors.items() if isinstance(e, PresetExecutorSettings)),
            }
        )
        self.scheduler = Scheduler(
            self.queue,
            settings,
            executors or {},
            instance=instance or Instance.current(processes),
            processes=processes,
            agents=self.agents,
            workspaces=workspaces,
            checks=checks,
            clock=clock,
        )
        self.review = TaskReview(store, workspaces, clock=clock)
        """Changes of isolated runs: see, merge, discard."""
        self.step_limiter = anyio.CapacityLimiter(settings.limits.max_concurrent_steps)
        self.plans = PlanService(
            store,
            self.queue,
            settings,
            self.agents,
            self.step_limiter,
            gateway=lambda: self.downstream,
            planner=planner,
            planners=planners,
            run_task=self.scheduler.request_task if run_plan_tasks else None,
            clock=clock,
        )

    @asynccontextmanager
    async def _services_running(self) -> AsyncIterator[None]:
        """Every service up, for as long as the block lasts; stopped in reverse order after."""
        async with AsyncExitStack() as stack:
            for service in self.services:
                await stack.enter_async_context(service.running())
            yield

    @asynccontextmanager
    async def running(
        self, *, background: bool = True, scheduler: bool | None = None, plans: bool | None = None
    ) -> AsyncIterator[Orchestrator]:
        """Open the store and the services, and host plan executions, until the block exits.

        With `background`, also run the lease reaper and resume plans left executing (a CLI
        command that only reads or writes the queue passes False). The scheduler runs when
        `scheduler` is true (default: with `background`): it first recovers runs left by an
        earlier instance of this server (before the block starts), then runs requested tasks,
        and every ready one if `scheduler.enabled`; the upkeep runs beside it. On exit its live
        runs are stopped and their tasks settled. `plans` (default: with `background`) resumes
        plans left executing by stopped servers; a `taskorch worker` passes False, as it runs
        tasks only.
        """
        await self.store.open()
        try:
            async with self._services_running(), anyio.create_task_group() as tg:
                resume = background if plans is None else plans
                await tg.start(lambda task_status: self.plans.serve(resume=resume, task_status=task_status))
                runs = background if scheduler is None else scheduler
                if runs:
                    tg.start_soon(self.containment.maintain)
                    await tg.start(self.scheduler.run)
                    for upkeep in self.upkeep:
                        tg.start_soon(upkeep.keep)
                if background:
                    # Started after the scheduler's own recovery, so the two never overlap.
                    tg.start_soon(
                        partial(
                            self.queue.run_reaper,
                            before=self.scheduler.recover_dead if runs else None,
                            after=self.scheduler.settle_reaped if runs else None,
                        )
                    )
                yield self
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The task group wraps whatever the `async with` body raised; callers should see
            # their own exception, not a group of one.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            # The task group has ended every run by now.
            self.containment.close()
            with anyio.CancelScope(shield=True):
                await self.store.close()
