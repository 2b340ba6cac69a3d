from __future__ import annotations

import os
from pathlib import Path

import pytest

from taskorch.engine.paths import resolve_work_directory
from taskorch.errors import InvalidArgument, PathNotAllowed


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "project").mkdir(parents=True)
    return Path(os.path.realpath(r))


def test_a_directory_under_a_root_is_returned_resolved(root: Path) -> None:
    assert resolve_work_directory(str(root / "project" / "."), [str(root)]) == str(root / "project")


def test_a_directory_that_does_not_exist_yet_is_allowed_under_a_root(root: Path) -> None:
    assert resolve_work_directory(str(root / "later"), [str(root)]) == str(root / "later")


def test_a_look_alike_prefix_is_refused(root: Path) -> None:
    evil = Path(str(root) + "-evil")
    evil.mkdir()
    with pytest.raises(PathNotAllowed, match="outside the allowed roots"):
        resolve_work_directory(str(evil), [str(root)])


def test_dot_dot_cannot_climb_out_of_a_root(root: Path) -> None:
    with pytest.raises(PathNotAllowed):
        resolve_work_directory(str(root / "project" / ".." / ".." / "elsewhere"), [str(root)])


def test_a_symlink_inside_a_root_pointing_outside_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(PathNotAllowed):
        resolve_work_directory(str(root / "link"), [str(root)])
    with pytest.raises(PathNotAllowed):
        resolve_work_directory(str(root / "link" / "deeper"), [str(root)])


def test_a_symlink_pointing_inside_a_root_is_resolved_to_its_target(root: Path) -> None:
    (root / "alias").symlink_to(root / "project")
    assert resolve_work_directory(str(root / "alias"), [str(root)]) == str(root / "project")


def test_relative_paths_and_nul_bytes_are_refused_with_a_hint(root: Path) -> None:
    with pytest.raises(InvalidArgument, match="absolute"):
        resolve_work_directory("project", [str(root)])
    with pytest.raises(InvalidArgument, match="NUL"):
        resolve_work_directory(f"{root}/a\x00b", [str(root)])


def test_the_error_names_the_roots_and_how_to_add_one(root: Path) -> None:
    with pytest.raises(PathNotAllowed) as info:
        resolve_work_directory("/etc", [str(root)])
    assert str(root) in str(info.value)
    assert "security.allowed_roots" in str(info.value)
