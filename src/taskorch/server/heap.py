"""The server's start-up heap, kept out of the garbage collector's way.

Start-up imports the SDK, pydantic, the schemas and the store and builds every tool: some
hundreds of thousands of objects that live as long as the process. CPython's collector walks
all of them in each full (generation 2) collection, and the first one comes a few dozen calls
after start, inside whichever call happens to allocate then: 60-185 ms on a call that
otherwise takes 2-7 ms. `gc.freeze()` moves everything alive at that point to a permanent
generation the collector never walks, so later collections only look at what was allocated
since (docs/benchmarks.md, "GC pauses").
"""

from __future__ import annotations

import gc
import logging
import time

__all__ = ["freeze_startup_heap"]

log = logging.getLogger(__name__)


def freeze_startup_heap() -> None:
    """Collect once, then freeze what survives: call once start-up is done, before serving.

    Idempotent in effect: a second call freezes only what was allocated in between. Objects
    frozen here are never freed by the collector even if they become cyclic garbage later,
    which is why the collection runs first (start-up's own garbage goes).
    """
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    log.debug(
        "froze %d start-up objects in %.1f ms", gc.get_freeze_count(), (time.perf_counter() - started) * 1000
    )
