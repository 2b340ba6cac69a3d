"""The work directory is checked again when the process starts, with no window before the spawn."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from taskorch.errors import WorkDirectoryRejected
from taskorch.executors.process import ProcessSpec, run_process
from taskorch.executors.work_directory import open_work_directory

pytestmark = pytest.mark.anyio

# Leaves a file where it runs, and prints where that is.
WITNESS = "import os; open('ran-here', 'w').close(); print(os.getcwd())"


def layout(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An allowed root with a real `work` directory in it, and a directory outside it."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "work").mkdir(parents=True)
    outside.mkdir()
    return root.resolve(), root.resolve() / "work", outside.resolve()


def witness(cwd: Path, root: Path) -> ProcessSpec:
    return ProcessSpec(
        argv=[sys.executable, "-c", WITNESS],
        cwd=str(cwd),
        env={"PATH": os.defpath},
        allowed_roots=[str(root)],
    )


async def test_a_directory_swapped_for_a_symlink_outside_the_roots_is_refused_at_spawn(
    tmp_path: Path,
) -> None:
    root, work, outside = layout(tmp_path)
    work.rmdir()
    work.symlink_to(outside, target_is_directory=True)
    with pytest.raises(WorkDirectoryRejected, match=f"now leads to {outside}, outside the allowed roots"):
        await run_process(witness(work, root))
    assert not (outside / "ran-here").exists()


async def test_a_missing_directory_is_refused_at_spawn(tmp_path: Path) -> None:
    root, work, _ = layout(tmp_path)
    work.rmdir()
    with pytest.raises(WorkDirectoryRejected, match="does not exist"):
        await run_process(witness(work, root))


async def test_the_child_runs_in_the_real_directory_and_no_descriptor_is_left_open(tmp_path: Path) -> None:
    root, work, _ = layout(tmp_path)
    (root / "alias").symlink_to(work, target_is_directory=True)  # a symlink that stays inside is fine
    lines: list[str] = []

    async def on_line(line: bytes, cut: bool) -> None:
        lines.append(line.decode())

    with anyio.fail_after(30):
        result = await run_process(witness(root / "alias", root), on_line=on_line)
    assert result.exit_code == 0
    assert lines == [str(work)]
    assert (work / "ran-here").exists()
    assert not [fd for fd in os.listdir("/proc/self/fd") if _points_to(fd, work)]


def _points_to(fd: str, directory: Path) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == str(directory)
    except OSError:
        return False


def test_a_swap_after_the_check_does_not_move_the_child(tmp_path: Path) -> None:
    """The mechanism: the child starts in the inode that was checked, whatever the path says by then."""
    root, work, outside = layout(tmp_path)
    with open_work_directory(str(work), [str(root)]) as directory:
        work.rename(root / "moved")
        work.symlink_to(outside, target_is_directory=True)
        done = subprocess.run(
            [sys.executable, "-c", WITNESS], cwd=directory.cwd, capture_output=True, text=True, check=True
        )
    assert done.stdout.strip() == str(root / "moved")
    assert (root / "moved" / "ran-here").exists()
    assert not (outside / "ran-here").exists()


def test_no_roots_checks_only_that_the_directory_exists(tmp_path: Path) -> None:
    with open_work_directory(str(tmp_path), None) as directory:
        assert directory.real_path == str(tmp_path.resolve())
    with pytest.raises(WorkDirectoryRejected, match="does not exist"):
        open_work_directory(str(tmp_path / "nope"), None)
    (tmp_path / "file").write_text("x")
    with pytest.raises(WorkDirectoryRejected, match="not a directory"):
        open_work_directory(str(tmp_path / "file"), None)
