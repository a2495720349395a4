"""Folders written whole or not at all (`paths.atomic_dir`): permissions, a file in the way, and the staging folders
a killed process leaves behind."""

import os
import subprocess
import sys

import pytest

from hsiclip.errors import DataError
from hsiclip.paths import _staging_prefix, atomic_dir, check_writable


def test_a_written_folder_follows_the_umask_and_replaces_nothing_on_failure(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "run") as tmp:
            (tmp / "a.txt").write_text("a")
    finally:
        os.umask(old)
    assert (tmp_path / "run" / "a.txt").read_text() == "a"
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o755  # mkdtemp alone gives 0700
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "run") as tmp:
        (tmp / "b.txt").write_text("b")
        raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # the old folder kept, no staging left
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["a.txt"]


def test_a_file_in_the_way_or_a_read_only_folder_is_one_clear_error(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"), atomic_dir(tmp_path / "out"):
        pass
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who may write anywhere (root)")
        with pytest.raises(DataError, match=f"cannot write to {locked}"):
            check_writable(locked / "runs" / "a")
    finally:
        locked.chmod(0o755)


def test_the_staging_folder_of_a_killed_process_is_removed_by_the_next_run(tmp_path):
    out = tmp_path / "run"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / (_staging_prefix(out, int(gone.stdout)) + "abc123")
    alive = tmp_path / (_staging_prefix(out, os.getppid()) + "def456")  # a running process: still writing
    foreign = tmp_path / ".run.not-ours"
    for folder in (dead, alive, foreign):
        folder.mkdir()
        (folder / "classes.tif").write_bytes(b"")
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("a")
    assert not dead.exists() and alive.exists() and foreign.exists()
