"""Queue statistics: the shape every store reports."""

from __future__ import annotations

from pydantic import BaseModel, Field

from taskorch.domain.schema import OUTPUT_MODEL_CONFIG

__all__ = ["DurationStats", "Statistics"]


class DurationStats(BaseModel):
    """Run durations (last start -> finish) of succeeded tasks, in seconds."""

    model_config = OUTPUT_MODEL_CONFIG

    count: int = Field(default=0, description="Succeeded runs with a start and a finish, all of them.")
    mean: float | None = Field(
        default=None, description="Mean run time over all of them (to the microsecond); null if none."
    )
    p50: float | None = Field(
        default=None, description="Median run time of the most recent 1,000 succeeded runs (by finish)."
    )
    p95: float | None = Field(
        default=None, description="95th percentile run time of the most recent 1,000 succeeded runs."
    )
    max: float | None = Field(default=None, description="Longest run time over all of them.")


class Statistics(BaseModel):
    """Counts and rates over the whole queue."""

    model_config = OUTPUT_MODEL_CONFIG

    total: int
    by_status: dict[str, int] = Field(description="Task count per status; every status is present.")
    by_mode: dict[str, int]
    by_priority: dict[str, int]
    by_directory: dict[str, int]
    queue_depth: int = Field(description="Tasks ready to be claimed now.")
    waiting: int = Field(description="Tasks held back by a dependency or a retry backoff.")
    running: int
    success_rate: float | None = Field(
        description="succeeded / (succeeded + failed); null before any task finished."
    )
    durations: DurationStats
