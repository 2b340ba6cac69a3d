"""A stand-in for a preset CLI (`codex`, `gemini`, `opencode`): replays real transcripts.

The program's name picks the transcripts (`codex`: tests/fixtures/codex-exec, `gemini`:
tests/fixtures/gemini-stream, `opencode`: tests/fixtures/opencode-run). The prompt (read from
stdin, as the presets send it) names the scenario as `replay:NAME:EXIT_CODE`: NAME.jsonl goes
to stdout and NAME.stderr (if any) to stderr, then the process exits with EXIT_CODE.
`replay:hang` prints one line, starts a grandchild and sleeps until killed. It records its
argv, environment and stdin to `.fake_cli.json` in its working directory. `--version` answers
like the real CLI. Only the standard library: it starts fast.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
DIRECTORIES = {"codex": "codex-exec", "gemini": "gemini-stream", "opencode": "opencode-run"}
VERSIONS = {"codex": "codex-cli 0.171.0", "gemini": "0.61.0", "opencode": "1.18.33"}


def main() -> int:
    # runpy.run_path (how the wrapper named `codex` or `gemini` runs this) replaces argv[0].
    program = Path(str(globals().get("PROGRAM", sys.argv[0]))).name
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(VERSIONS[program] + "\n")
        return 0
    prompt = sys.stdin.read()
    Path(".fake_cli.json").write_text(
        json.dumps({"argv": sys.argv, "env": dict(os.environ), "stdin": prompt})
    )
    if "replay:hang" in prompt:  # the transcript's first line, then a grandchild, then silence
        first = next(iter(sorted((FIXTURES / DIRECTORIES[program]).glob("*.jsonl")))).read_text()
        sys.stdout.write(first.splitlines()[0] + "\n")
        sys.stdout.flush()
        subprocess.Popen(["sleep", "300"])
        time.sleep(300)
        return 0
    match = re.search(r"replay:([\w-]+):(\d+)", prompt)
    if match is None:
        sys.stderr.write("no scenario in the prompt\n")
        return 2
    base = FIXTURES / DIRECTORIES[program] / match.group(1)
    if base.with_suffix(".jsonl").exists():
        sys.stdout.write(base.with_suffix(".jsonl").read_text())
        sys.stdout.flush()
    if base.with_suffix(".stderr").exists():
        sys.stderr.write(base.with_suffix(".stderr").read_text())
    return int(match.group(2))


if __name__ == "__main__":
    sys.exit(main())
