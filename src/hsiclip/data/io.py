"""Read arrays from .mat / .npy files and compute the checksums that pin them down.

Every decoding failure becomes a `DataError` naming the file, so the command line can report one line.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import struct
import tokenize
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from ..errors import DataError

# What scipy / numpy raise on corrupt, truncated or foreign bytes (checked on real and damaged files, and by
# tests/test_fuzz.py: numpy re-tokenizes an unparsable version 1/2 .npy header and lets tokenize.TokenError out, a
# .npy shape beyond 64 bits is an OverflowError, and scipy's array_from_header leaves its result unset for an unknown
# array class, an UnboundLocalError).
_DECODE_ERRORS = (MatReadError, ValueError, OSError, EOFError, IndexError, KeyError, TypeError, OverflowError,
                  UnboundLocalError, struct.error, zlib.error, tokenize.TokenError)
_CHUNK = 1 << 20  # bytes read at a time when hashing files


def error_text(e: BaseException | str) -> str:
    """An exception's text (or a name read from a file) on one printable line: decoders quote the file's own bytes,
    newlines included."""
    text = e if isinstance(e, str) else str(e) or type(e).__name__
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


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
    """Read a .npy file without ever unpickling objects; mapped first, so that a header claiming more than the file
    holds is refused before anything is allocated."""
    return np.array(open_npy(path))


def open_npy(path: Path) -> np.ndarray:
    """Memory-map a .npy file (its header checked against the file's size, no values read yet, no unpickling)."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except _DECODE_ERRORS as e:
        raise DataError(f"{path}: cannot read this .npy file, it is corrupt or truncated ({error_text(e)})") from e
    except MemoryError as e:  # numpy allocates the header length it reads first: a damaged one can claim gigabytes
        raise DataError(f"{path}: cannot read this .npy file, its header claims more bytes than fit in memory (a "
                        "corrupt header)") from e


def read_mat(path: Path, key: str) -> np.ndarray:
    """Read variable `key` from a MATLAB v4/v5 file, or a v7.3 (HDF5) file when h5py is installed."""
    try:
        found = _loadmat(path, [key])
    except NotImplementedError:  # scipy's answer to MATLAB v7.3, which is HDF5 inside
        return _read_mat_hdf5(path, key)
    if key not in found:
        raise DataError(f"{path}: no variable {key!r} in this file; it holds {_list_variables(path)}")
    return np.asarray(found[key])


def _list_variables(path: Path) -> str:
    """Describe a .mat file's variables; a full read also catches files cut short after the header (the search for
    one name skips the others unread), which are corrupt rather than missing a variable."""
    everything = _loadmat(path, None)
    names = [f"{error_text(k)} {np.shape(v)}" for k, v in everything.items() if not k.startswith("__")]
    return ", ".join(names) if names else "no variables"


def _loadmat(path: Path, names: list[str] | None) -> dict[str, Any]:
    """scipy.io.loadmat of the variables `names` (all of them for None), every failure as one DataError."""
    try:
        _check_mat5_types(path, names)
        return scipy.io.loadmat(path, variable_names=names)
    except _DECODE_ERRORS as e:
        raise DataError(f"{path}: cannot read this .mat file, it is corrupt or truncated ({error_text(e)})") from e
    except MemoryError as e:
        raise _too_large(path) from e


def _too_large(path: Path) -> DataError:
    """scipy allocates what a variable's header declares: a damaged header can claim terabytes."""
    return DataError(f"{path}: cannot read this .mat file, a variable declares more data than fits in memory "
                     "(a corrupt header, or a file too large for this machine)")


# The data type codes that scipy's v5 reader has a dtype for. It looks the code of each element of numbers or text up
# in a 20-slot table unchecked (scipy PR #25349, not merged), so any other code, one flipped byte, crashes the
# interpreter (segmentation fault) instead of raising: `_check_mat5_types` walks what scipy will decode, refusing those.
_MI_DTYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 16, 17, 18})
_MI_MATRIX, _MI_COMPRESSED = 14, 15
_MX_CELL, _MX_STRUCT, _MX_OBJECT, _MX_CHAR, _MX_SPARSE, _MX_FUNCTION, _MX_OPAQUE = 1, 2, 3, 4, 5, 16, 17
_MX_NUMERIC = range(6, 16)  # mxDOUBLE_CLASS .. mxUINT64_CLASS
_MAX_NESTING = 100  # cells / structs within each other; scipy recurses in C for each level


class _Stop(Exception):
    """The walk met damage that scipy reports itself (end of data, bad inflation, a wrong element): stop checking."""


class _Mat5Walk:
    """Follows scipy's v5 reader (read_header, array_from_header) over a file, or over the inflated content of one
    miCOMPRESSED element, reading only tags and headers and skipping the values."""

    def __init__(self, f: Any, order: str, end: int, compressed: int | None = None) -> None:
        self.f, self.order, self.end, self.left, self.buf = f, order, end, compressed or 0, b""
        self.z = zlib.decompressobj() if compressed is not None else None

    def read(self, n: int) -> bytes:
        if self.z is None:
            data = self.f.read(n)
        else:
            while len(self.buf) < n:
                tail = self.z.unconsumed_tail
                if not tail:
                    tail = self.f.read(min(self.left, _CHUNK))
                    if not tail:
                        break
                    self.left -= len(tail)
                self.buf += self.z.decompress(tail, _CHUNK)
            data, self.buf = self.buf[:n], self.buf[n:]
        if len(data) < n:
            raise _Stop
        return data

    def skip(self, n: int) -> None:
        if self.z is None:  # values in the file itself: seek past them
            if self.f.seek(n, 1) > self.end:
                raise _Stop
            return
        while n > 0:
            n -= len(self.read(min(n, _CHUNK)))

    def tag(self) -> tuple[int, int]:
        mdtype, count = struct.unpack(self.order + "II", self.read(8))
        return mdtype, count

    def element(self, limit: int | None = None) -> tuple[int, bytes]:
        """(type code, data) of the next element (read_element; a small element holds its data in its tag), at most
        `limit` bytes of data where scipy has a limit."""
        raw = self.read(8)
        mdtype, count = struct.unpack(self.order + "II", raw)
        if mdtype >> 16:
            return mdtype & 0xFFFF, raw[4:4 + (mdtype >> 16)]
        if limit is not None and count > limit:
            raise _Stop  # scipy refuses it ("Unexpected amount of data to read")
        data = self.read(count)
        self.skip(-count % 8)
        return mdtype, data

    def values(self) -> None:
        """An element of numbers or text (read_numeric, read_char), whose type code scipy looks up unchecked."""
        mdtype, count = self.tag()
        if mdtype >> 16:
            mdtype, count = mdtype & 0xFFFF, 0
        if mdtype not in _MI_DTYPES:
            raise DataError(f"a variable's values have the unknown data type code {mdtype}")
        self.skip(count + (-count % 8))

    def header(self) -> tuple[int, int, int, bytes]:
        """(class, is complex, number of elements, name) after an miMATRIX tag (read_header)."""
        self.read(8)
        flags = struct.unpack(self.order + "I", self.read(8)[:4])[0]
        if flags & 0xFF == _MX_OPAQUE:
            return _MX_OPAQUE, 0, 0, self.element()[1]
        dims = self.element(limit=128)[1]  # scipy's room for 32 dimensions
        size = int(np.prod(np.frombuffer(dims[: len(dims) // 4 * 4], dtype=self.order + "i4"), dtype=np.int64))
        return flags & 0xFF, flags >> 11 & 1, size, self.element()[1]

    def content(self, mclass: int, complex_: int, size: int, depth: int = 0) -> None:
        """The values of an array whose header was just read (array_from_header)."""
        if depth > _MAX_NESTING:
            raise DataError(f"variables nested more than {_MAX_NESTING} levels deep")
        if mclass in _MX_NUMERIC or mclass == _MX_CHAR:
            for _ in range(1 + (complex_ and mclass != _MX_CHAR)):
                self.values()
        elif mclass == _MX_SPARSE:
            for _ in range(3 + complex_):  # row indices, column pointers, real (and imaginary) values
                self.values()
        elif mclass == _MX_CELL:
            for _ in range(max(size, 0)):
                self.sub_matrix(depth)
        elif mclass in (_MX_STRUCT, _MX_OBJECT):
            if mclass == _MX_OBJECT:
                self.element()  # the class name
            length, names = self.element(limit=4)[1], self.element()[1]
            if len(length) != 4 or (n_chars := struct.unpack(self.order + "i", length)[0]) <= 0:
                raise _Stop  # scipy refuses such field names itself
            for _ in range(max(size, 0) * (len(names) // n_chars)):
                self.sub_matrix(depth)
        elif mclass == _MX_OPAQUE:
            self.element()  # type system
            self.element()  # class name
            self.sub_matrix(depth)
        elif mclass == _MX_FUNCTION:
            self.sub_matrix(depth)

    def sub_matrix(self, depth: int) -> None:
        """A cell's or a field's array (read_mi_matrix)."""
        mdtype, count = self.tag()
        if mdtype != _MI_MATRIX:
            raise _Stop
        if count:
            mclass, complex_, size, _ = self.header()
            self.content(mclass, complex_, size, depth + 1)


def _check_mat5_types(path: Path, names: list[str] | None) -> None:
    """Before loadmat, refuse a v5 .mat file with a data type code that would crash scipy (`_MI_DTYPES`) in the
    variables it will decode (`names`, or all); any other damage is left for scipy to report."""
    with open(path, "rb") as f:
        try:
            if scipy.io.matlab.matfile_version(f)[0] != 1:
                return  # v4 or v7.3: other readers
        except _DECODE_ERRORS:
            return
        f.seek(126)
        order = "<" if f.read(2) == b"IM" else ">"  # as scipy's guess_byte_order
        end = f.seek(0, 2)
        f.seek(128)
        top = _Mat5Walk(f, order, end)
        try:
            while f.tell() < end:
                mdtype, count = top.tag()
                if not count:
                    return
                start = f.tell()
                walk = top
                if mdtype == _MI_COMPRESSED:  # one miMATRIX, deflated
                    walk = _Mat5Walk(f, order, end, count)
                    mdtype = walk.tag()[0]
                if mdtype != _MI_MATRIX:
                    return
                mclass, complex_, size, name = walk.header()
                if names is None or name.decode("latin1") in names:
                    walk.content(mclass, complex_, size)
                f.seek(start + count)
        except (_Stop, zlib.error):
            return
        except DataError as e:
            raise DataError(f"{path}: cannot read this .mat file, it is corrupt ({e})") from None


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
        raise DataError(f"{path}: cannot read this MATLAB v7.3 file, it is corrupt or truncated "
                        f"({error_text(e)})") from e
