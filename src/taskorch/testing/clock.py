"""`FakeClock`: a clock a test moves by hand, for the store, queue and orchestrator's `clock=`."""

from __future__ import annotations

import time

__all__ = ["FakeClock"]


class FakeClock:
    """A clock tests move by hand: `clock()` returns epoch seconds, `advance(s)` moves it."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
