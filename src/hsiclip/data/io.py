"""Read arrays from .mat / .npy files and compute the checksums that pin them down.

Every decoding failure becomes a `DataError` naming the file, so the command line can report one line.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from ..errors import DataError

# What scipy / numpy raise on corrupt, truncated or foreign bytes (checked on real and damaged files).
_DECODE_ERRORS = (MatReadError, ValueError, OSError, EOFError, IndexError, KeyError, TypeError,
                  struct.error, zlib.error)
_CHUNK = 1 << 20  # bytes read at a time when hashing files


def array_sha256(a: np.ndarray) -> str:
    """sha256 of an array's values (C order, little-endian), independent of the file that held it."""
    a = np.asarray(a)
    return hashlib.sha256(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest()


def file_sha256(path: Path | str) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def git_blob_id(path: Path | str) -> str:
    """Git blob id of a file (what `git hash-object FILE` prints): sha1 of b"blob <size>\\0" + bytes."""
    path = Path(path)
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def read_array(path: Path | str, key: str | None = None) -> np.ndarray:
    """Read one array as stored: variable `key` of a .mat file, or the whole of a .npy file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".mat":
        if key is None:
            raise DataError(f"{path}: a .mat file needs the name of the variable to read")
        return read_mat(path, key)
    if suffix == ".npy":
        return read_npy(path)
    raise DataError(f"{path}: unsupported file type {suffix!r} (expected .mat or .npy)")


def read_npy(path: Path) -> np.ndarray:
    """Read a .npy file without ever unpickling objects."""
    try:
        return np.asarray(np.load(path, allow_pickle=False))
    except _DECODE_ERRORS as e:
        raise DataError(f"{path}: cannot read this .npy file, it is corrupt or truncated ({e})") from e


def read_mat(path: Path, key: str) -> np.ndarray:
    """Read variable `key` from a MATLAB v4/v5 file, or a v7.3 (HDF5) file when h5py is installed."""
    try:
        found = scipy.io.loadmat(path, variable_names=[key])
    except NotImplementedError:  # scipy's answer to MATLAB v7.3, which is HDF5 inside
        return _read_mat_hdf5(path, key)
    except _DECODE_ERRORS as e:
        raise DataError(f"{path}: cannot read this .mat file, it is corrupt or truncated ({e})") from e
    if key not in found:
        raise DataError(f"{path}: no variable {key!r} in this file; it holds {_list_variables(path)}")
    return np.asarray(found[key])


def _list_variables(path: Path) -> str:
    """Describe a .mat file's variables; a full read also catches files cut short after the header."""
    try:
        everything = scipy.io.loadmat(path)
    except _DECODE_ERRORS as e:
        return f"an unreadable rest (corrupt or truncated: {e})"
    names = [f"{k} {np.shape(v)}" for k, v in everything.items() if not k.startswith("__")]
    return ", ".join(names) if names else "no variables"


def _read_mat_hdf5(path: Path, key: str) -> np.ndarray:
    if importlib.util.find_spec("h5py") is None:
        raise DataError(f"{path}: this is a MATLAB v7.3 (HDF5) file and reading it needs h5py "
                        "(pip install h5py), or re-save it in MATLAB with save(..., '-v7')")
    h5py: Any = importlib.import_module("h5py")
    try:
        with h5py.File(path, "r") as f:
            if key not in f:
                names = ", ".join(k for k in f if not k.startswith("#")) or "no variables"
                raise DataError(f"{path}: no variable {key!r} in this file; it holds {names}")
            # MATLAB writes column-major, so h5py sees the axes reversed.
            return np.asarray(f[key][()]).T
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: cannot read this MATLAB v7.3 file, it is corrupt or truncated ({e})") from e
