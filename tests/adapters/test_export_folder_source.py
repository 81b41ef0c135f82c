"""Tests of FolderSource: all matching files of a folder followed as one export input."""

from __future__ import annotations

import os
from pathlib import Path

from adapters.exports.sources import FolderSource, matching_files


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_folder_source_waits_until_stable(tmp_path: Path) -> None:
    clock = Clock()
    (tmp_path / "a.epp").write_text("one")
    source = FolderSource(tmp_path, "*.epp", stable_seconds=2, clock=clock)

    assert source.poll() is None
    assert source.current_file == tmp_path
    assert source.seconds_until_stable() == 2
    clock.now += 2
    first = source.poll()

    assert first is not None
    assert first.size == 3
    assert source.poll() is None


def test_folder_source_sees_added_and_removed(tmp_path: Path) -> None:
    clock = Clock()
    (tmp_path / "a.epp").write_text("one")
    source = FolderSource(tmp_path, "*.epp", stable_seconds=0, clock=clock)
    first = source.poll()

    (tmp_path / "b.epp").write_text("two")
    second = source.poll()
    (tmp_path / "a.epp").unlink()
    third = source.poll()

    assert first is not None
    assert second is not None
    assert third is not None
    assert second != first
    assert third != second
    assert third.size == 3


def test_folder_source_older_rewrite_detected(tmp_path: Path) -> None:
    # Rewriting a file that is not the newest must produce a new version too.
    clock = Clock()
    old = tmp_path / "a.epp"
    old.write_text("one")
    os.utime(old, ns=(1_000_000_000, 1_000_000_000))
    (tmp_path / "b.epp").write_text("two")
    source = FolderSource(tmp_path, "*.epp", stable_seconds=0, clock=clock)
    first = source.poll()

    old.write_text("one, two")
    os.utime(old, ns=(1_000_000_000, 1_000_000_000))
    second = source.poll()

    assert first is not None
    assert second is not None
    assert second != first


def test_folder_source_ignores_temporary_names(tmp_path: Path) -> None:
    clock = Clock()
    (tmp_path / "a.epp").write_text("one")
    source = FolderSource(tmp_path, "*.epp", stable_seconds=0, clock=clock)
    first = source.poll()

    (tmp_path / "b.epp.part").write_text("half")
    (tmp_path / "notes.txt").write_text("other")

    assert first is not None
    assert source.poll() is None
    assert matching_files(tmp_path, "*.epp") == [tmp_path / "a.epp"]


def test_folder_source_empty_folder_missing(tmp_path: Path) -> None:
    source = FolderSource(tmp_path, "*.epp", stable_seconds=0, clock=Clock())

    assert source.poll() is None
    assert source.current_file is None


def test_folder_source_single_file_path(tmp_path: Path) -> None:
    path = tmp_path / "export.epp"
    source = FolderSource(path, "*.epp", stable_seconds=0, clock=Clock())
    assert source.poll() is None

    path.write_text("one")

    assert source.poll() is not None
    assert source.current_file == path
    assert matching_files(path, "*.epp") == [path]
