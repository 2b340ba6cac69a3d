"""A stand-in coding CLI that stays alive until the test lets it go.

    hold_cli.py CONTROL_DIR [--grandchild]

It writes `run-<pid>.json` (pid, process group, grandchild pid) into its working directory,
atomically, once everything it starts is running. Then:
- if `CONTROL_DIR/hold` existed when it started, it waits (up to 300 s) and never exits by
  itself: a run a server loses mid-way;
- otherwise it waits until `CONTROL_DIR/release-<pid>` or `CONTROL_DIR/release-all` appears
  (at most 30 s, then it fails with exit code 3), prints `done` and exits 0.

`--grandchild` first starts `sleep 300` in its process group, as a CLI's `sleep 300 &` would;
CONTROL_DIR in its environment marks it as the test's (see `serve_process.kill_marked`).
Only the standard library: it starts fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

POLL_SECONDS = 0.005
HOLD_SECONDS = 300.0
RELEASE_SECONDS = 30.0


def main() -> int:
    control = Path(sys.argv[1])
    held = (control / "hold").exists()
    record: dict[str, object] = {"pid": os.getpid(), "pgid": os.getpgrp(), "held": held}
    if "--grandchild" in sys.argv[2:]:
        env = {**os.environ, "HOLD_CLI_CONTROL": str(control)}
        record["grandchild"] = subprocess.Popen(["sleep", "300"], env=env).pid
    name = f"run-{os.getpid()}.json"
    Path(name + ".tmp").write_text(json.dumps(record))
    os.replace(name + ".tmp", name)

    if held:
        time.sleep(HOLD_SECONDS)
        return 4
    mine, everyone = control / f"release-{os.getpid()}", control / "release-all"
    deadline = time.monotonic() + RELEASE_SECONDS
    while not (mine.exists() or everyone.exists()):
        if time.monotonic() > deadline:
            return 3
        time.sleep(POLL_SECONDS)
    sys.stdout.write("done\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
