"""Git worktrees for isolated runs: one worktree and branch per run, then review and merge.

`base.py` is the protocol the engine holds; `workspace.py` and `review.py` implement it over
the `git` CLI (`git.py`), with each repository's git operations serialised (`locks.py`).
"""
