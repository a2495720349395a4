"""Download one file with a progress bar, verify it, and only then move it into place.

A partial or wrong download never sits at the destination: the bytes go to `<dest>.part`, are
checked, and are renamed atomically; on any failure the `.part` file is removed.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..errors import DataError, HsiclipError
from .io import file_sha256, git_blob_id

__all__ = ["download_file", "git_blob_id"]

_TIMEOUT_S = 60  # per socket operation, not for the whole file
_CHUNK = 1 << 16


def download_file(url: str, dest: Path, *, git_blob: str | None = None, sha256: str | None = None,
                  progress: bool = True) -> Path:
    """Fetch `url` to `dest`, checking its git blob id and/or sha256 when given; returns `dest`.

    Raises `HsiclipError` when the address cannot be read (offline, HTTP error, cut short) and
    `DataError` when the bytes arrive but fail a checksum.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        _fetch(url, part, progress=progress)
        _check(part, url, dest.name, git_blob=git_blob, sha256=sha256)
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return dest


def _fetch(url: str, part: Path, *, progress: bool) -> None:
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            with open(part, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                              desc=part.name.removesuffix(".part"),
                                              disable=not progress) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as e:
        raise HsiclipError(f"download of {url} failed: the server answered HTTP {e.code} {e.reason}") from e
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise HsiclipError(f"download of {url} failed ({e}); the machine may be offline or the address "
                           "unreachable") from e
    if total is not None and done != total:
        raise HsiclipError(f"download of {url} stopped after {done} of {total} bytes; try again")


def _check(part: Path, url: str, name: str, *, git_blob: str | None, sha256: str | None) -> None:
    if git_blob is not None and (got := git_blob_id(part)) != git_blob:
        raise DataError(f"{name} downloaded from {url} has git blob id {got}, expected {git_blob}; "
                        "the file was not kept")
    if sha256 is not None and (got := file_sha256(part)) != sha256:
        raise DataError(f"{name} downloaded from {url} has sha256 {got}, expected {sha256}; "
                        "the file was not kept")
