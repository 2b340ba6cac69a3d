"""`taskorch worker`: a process that runs claude_code and custom tasks from the shared queue.

It serves no MCP or HTTP. It claims ready tasks under its instance id (the scheduler, with
automatic claiming on), keeps their leases alive, reaps expired leases like every server, and
on start ends the leftover runs of earlier workers or servers on this host.

Stopping: the first SIGTERM or SIGINT stops claiming at once and lets live runs finish for
up to the grace period; then the runs still live are ended (their whole process groups) and
their tasks settled by the lease rules (`retry_safe` with attempts left: queued again, else
failed). A second signal ends the runs at once.
"""

from __future__ import annotations

import logging
import signal

import anyio

from taskorch.engine.orchestrator import Orchestrator

__all__ = ["run_worker"]

log = logging.getLogger(__name__)


async def run_worker(orchestrator: Orchestrator, *, grace_seconds: float) -> int:
    """Run tasks until SIGTERM or SIGINT, then stop as the module docstring says; return 0."""
    scheduler = orchestrator.scheduler
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with orchestrator.running(plans=False):
            settings = orchestrator.settings
            log.info(
                "taskorch worker %s running tasks (at most %d at once, at or below %s)",
                scheduler.instance_id,
                settings.limits.max_concurrent_runs,
                settings.scheduler.work_path or "/",
            )
            async for signum in signals:
                log.info("%s: claiming no more tasks", signal.Signals(signum).name)
                break
            scheduler.stop_claiming()
            async with anyio.create_task_group() as tg:

                async def on_second_signal() -> None:
                    async for signum in signals:
                        log.warning("%s again: ending the live runs now", signal.Signals(signum).name)
                        tg.cancel_scope.cancel()
                        return

                tg.start_soon(on_second_signal)
                if scheduler.live_runs:
                    log.info(
                        "waiting up to %.0fs for %d live run(s) to finish", grace_seconds, scheduler.live_runs
                    )
                with anyio.move_on_after(grace_seconds):
                    await scheduler.drain()
                tg.cancel_scope.cancel()
            if scheduler.live_runs:
                log.warning("ending %d run(s) still live; their tasks are settled", scheduler.live_runs)
        # Leaving `running()` stopped the scheduler: live runs were ended and settled.
    log.info("taskorch worker stopped")
    return 0
