"""What holds every process a run starts, so that all of them end with the run.

`base` is the contract; `cgroup`, `subreaper` and `group` implement it. `open_containment`
picks one from `runs.containment` once, at start.
"""

from __future__ import annotations

import logging
from typing import Literal

from taskorch.errors import ConfigError
from taskorch.executors.containment.base import (
    Containment,
    ContainmentMode,
    ContainmentStatus,
    ContainmentUnavailable,
    RunScope,
)
from taskorch.executors.containment.cgroup import CgroupContainment
from taskorch.executors.containment.group import GroupOnly
from taskorch.executors.containment.subreaper import SubreaperContainment

__all__ = [
    "CgroupContainment",
    "Containment",
    "ContainmentMode",
    "ContainmentSetting",
    "ContainmentStatus",
    "ContainmentUnavailable",
    "GroupOnly",
    "RunScope",
    "SubreaperContainment",
    "open_containment",
]

log = logging.getLogger(__name__)

ContainmentSetting = Literal["auto", "cgroup", "subreaper", "none"]


def open_containment(configured: ContainmentSetting) -> Containment:
    """The containment `runs.containment` asks for; with `auto`, the best this host allows.

    `auto` tries a cgroup per run, then the subreaper, then the process group alone. Raises
    `ConfigError` if `cgroup` or `subreaper` is asked for and the host does not allow it.
    Call `close()` on the result when no run is left.
    """
    if configured == "none":
        return GroupOnly()
    if configured in ("cgroup", "auto"):
        try:
            return CgroupContainment(configured=configured)
        except ContainmentUnavailable as exc:
            if configured == "cgroup":
                raise ConfigError(
                    f'runs.containment = "cgroup" is not possible here: {exc}. Use "auto" (it falls '
                    'back to the subreaper) or "subreaper"'
                ) from exc
            log.info("no cgroup per run (%s); trying the subreaper", exc)
    try:
        return SubreaperContainment(configured=configured)
    except ContainmentUnavailable as exc:
        if configured == "subreaper":
            raise ConfigError(f'runs.containment = "subreaper" is not possible here: {exc}') from exc
        log.warning("no containment beyond process groups (%s): a run's daemons may outlive it", exc)
    return GroupOnly(configured)
