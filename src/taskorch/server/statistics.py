"""The server's statistics: the queue's, with executor health, the scheduler and containment."""

from __future__ import annotations

from taskorch.engine.orchestrator import Orchestrator
from taskorch.server.models import ServerStatistics

__all__ = ["server_statistics"]


async def server_statistics(orchestrator: Orchestrator) -> ServerStatistics:
    """Queue statistics with executor health and the scheduler's state."""
    stats = await orchestrator.queue.statistics()
    return ServerStatistics(
        **stats.model_dump(),
        executors=await orchestrator.scheduler.health(),
        scheduler=orchestrator.scheduler.status(),
        containment=orchestrator.containment.status(),
    )
