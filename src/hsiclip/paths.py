"""Where hsiclip looks for scenes and keeps its cache (the one module that reads the environment), and how it
writes folders.

- `HSICLIP_DATA_DIR`: a folder holding the scenes' files (searched before the packaged copies and the cache);
- `HSICLIP_CACHE_DIR`: downloaded scenes (`<cache>/data`) and text embeddings (`<cache>/text`); default: the
  user cache folder of the platform (platformdirs), e.g. `~/.cache/hsiclip` on Linux.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from platformdirs import user_cache_dir

from .errors import DataError


def cache_dir() -> Path:
    """The user cache folder [env: HSICLIP_CACHE_DIR]."""
    return Path(os.environ.get("HSICLIP_CACHE_DIR") or user_cache_dir("hsiclip"))


def data_dirs(data_dir: Path | str | None = None) -> list[Path]:
    """Folders to search for a scene's files, in order: `data_dir` if given, else $HSICLIP_DATA_DIR if set."""
    if data_dir:
        return [Path(data_dir)]
    return [Path(os.environ["HSICLIP_DATA_DIR"])] if os.environ.get("HSICLIP_DATA_DIR") else []


def download_dir() -> Path:
    """Where downloaded scene files go (and are found again)."""
    return cache_dir() / "data"


def check_writable(out_dir: Path) -> None:
    """Fail now, before any work, if `out_dir` cannot be written: a file in its place, or a nearest existing
    folder above it that this user may not write to."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir} is a file, not a folder; choose another --out")
    parent = out_dir.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"cannot write to {parent} (for {out_dir}); choose another --out")


def _staging_prefix(out_dir: Path, pid: int | None = None) -> str:
    """The name start of `out_dir`'s staging folders made by process `pid` on this host (this process: None)."""
    return f".{out_dir.name}.hsiclip-{socket.gethostname()}-{os.getpid() if pid is None else pid}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_staging(out_dir: Path) -> list[Path]:
    """Remove the staging folders beside `out_dir` that an earlier hsiclip process on this host left when it was
    killed (SIGKILL, a lost node): only folders named by `atomic_dir`, and only when their process is gone."""
    mine = _staging_prefix(out_dir, 0)[:-2]  # ".NAME.hsiclip-HOST-"
    removed = []
    for p in Path(out_dir).parent.glob(f"{glob.escape(mine)}*-*"):
        pid = p.name[len(mine):].split("-", 1)[0]
        if p.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


@contextmanager
def atomic_dir(out_dir: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; it replaces `out_dir` on success and is removed on any failure,
    so a failed or interrupted command never leaves a half-written folder. A process killed outright cannot remove
    its own: the next `atomic_dir` for the same `out_dir` does (`remove_stale_staging`)."""
    out_dir = Path(out_dir)
    check_writable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=_staging_prefix(out_dir), dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # as a plain mkdir would make it (mkdtemp makes it 0700)
    try:
        yield tmp
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
