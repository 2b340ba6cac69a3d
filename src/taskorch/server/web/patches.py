"""The console's view of an isolated task's patch: one page of the whole patch at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from taskorch.domain import Task
from taskorch.engine.orchestrator import Orchestrator
from taskorch.errors import CallerError

__all__ = ["PATCH_PAGE", "PatchPage", "patch_page"]

PATCH_PAGE: Final = 20_000
"""Characters of the patch the Changes section shows at once."""


@dataclass(frozen=True)
class PatchPage:
    text: str
    offset: int
    total: int  # characters in the whole patch (or in the preview, when only that is left)
    whole: bool  # False: git no longer has the commits, so only the recorded preview is shown

    @property
    def previous(self) -> int:
        return max(0, self.offset - PATCH_PAGE)

    @property
    def next(self) -> int | None:
        end = self.offset + len(self.text)
        return end if end < self.total else None


def _offset(raw: str | None) -> int:
    """`?patch=` as a character offset; anything but a plain non-negative number is 0."""
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and len(raw) <= 12 else 0


async def patch_page(orchestrator: Orchestrator, task: Task, raw_offset: str | None) -> PatchPage:
    """The page of `task`'s whole patch at `raw_offset` (the query's text, checked here)."""
    changes = task.changes
    if changes is None:
        return PatchPage("", 0, 0, whole=True)
    offset = _offset(raw_offset)
    try:
        page = await orchestrator.review.changes(task.id, offset=offset, limit=PATCH_PAGE)
    except CallerError:  # no worktree support here: the recorded preview is all there is
        preview = changes.patch_preview
        return PatchPage(preview, 0, len(preview), whole=not changes.patch_truncated)
    if offset and not page.patch and page.patch_chars:  # past the end (an old link): start over
        page = await orchestrator.review.changes(task.id, offset=0, limit=PATCH_PAGE)
    whole = not (changes.patch_truncated and page.patch_chars == len(changes.patch_preview))
    return PatchPage(page.patch, page.offset, page.patch_chars, whole=whole)
