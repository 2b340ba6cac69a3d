"""The start-up heap freeze that keeps full garbage collections short while serving."""

from __future__ import annotations

import gc

from taskorch.server.heap import freeze_startup_heap


def test_freezing_moves_what_is_alive_out_of_the_collectors_generations() -> None:
    gc.unfreeze()
    kept = [object() for _ in range(1000)]
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() >= len(kept)
        assert sum(gc.get_count()) < len(kept)  # the young generations were emptied
    finally:
        gc.unfreeze()  # the test process goes on collecting as before
