"""Queue statistics: the shape every store reports."""

from __future__ import annotations

from pydantic import BaseModel, Field

from taskorch.domain.schema import OUTPUT_MODEL_CONFIG

__all__ = ["DurationStats", "ExecutorStats", "Statistics"]


class DurationStats(BaseModel):
    """Run durations (last start -> finish) of succeeded tasks, in seconds."""

    model_config = OUTPUT_MODEL_CONFIG

    count: int = 0
    mean: float | None = None
    p50: float | None = Field(default=None, description="Over the last 1,000 succeeded runs.")
    p95: float | None = Field(default=None, description="Over the last 1,000 succeeded runs.")
    max: float | None = None


class ExecutorStats(BaseModel):
    """Ended runs (succeeded, failed or cancelled after starting) of one executor and model, with
    the cost and tokens each task's last run reported."""

    model_config = OUTPUT_MODEL_CONFIG

    executor: str
    model: str | None = Field(default=None, description="null or absent: the executor's default")
    runs: int
    succeeded: int
    failed: int
    cost_usd: float
    input_tokens: int
    output_tokens: int
    mean_seconds: float


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
    by_executor: list[ExecutorStats] = Field(default_factory=list)
