"""Where hsiclip looks for scenes and keeps its cache (the one module that reads the environment), and how it
writes folders.

- `HSICLIP_DATA_DIR`: a folder holding the scenes' files (searched before the packaged copies and the cache);
- `HSICLIP_CACHE_DIR`: downloaded scenes (`<cache>/data`) and text embeddings (`<cache>/text`); default: the
  user cache folder of the platform (platformdirs), e.g. `~/.cache/hsiclip` on Linux.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from platformdirs import user_cache_dir


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


@contextmanager
def atomic_dir(out_dir: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; it replaces `out_dir` on success and is removed on any failure,
    so a failed or interrupted command never leaves a half-written folder."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield tmp
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
