"""One contract every Executor meets: the real ones (against fake CLIs) and the engine's fake."""
