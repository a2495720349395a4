"""Bounded fuzzing of the readers (slow tier): damaged .mat / .npy files, ENVI pairs, GeoTIFF labels and class files.

Every reader must either return a valid result or raise an `HsiclipError` whose message is one line naming the file;
any other exception is a bug. Budgets are small and the runs derandomized, so CI sees the same examples every time.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hsiclip.data.io import read_array
from hsiclip.data.rasters import CubeSource, read_labels, write_envi, write_labels_tif
from hsiclip.errors import DataError, HsiclipError
from hsiclip.text.prompts import CLASS_KEYS, ClassPrompt, load_prompt_set

STEM = "fuzzfile"  # every file fuzzed is named STEM.<suffix>, and every error message must name it
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _budget(n: int) -> settings:
    return settings(FUZZ, max_examples=n)


# --- what every reader must do ------------------------------------------------------------------------------------


def _outcome(call: Callable[[], Any], path: Path) -> Any:
    """call()'s result, or None when it raised a one-line HsiclipError naming the file; anything else propagates."""
    try:
        return call()
    except HsiclipError as e:
        message = str(e)
        assert "\n" not in message, f"multi-line message: {message!r}"
        assert STEM in message, f"the message does not name the file: {message!r}"
        return None


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A fresh folder per example (no stale side files such as GDAL's .aux.xml between examples)."""
    d = Path(tempfile.mkdtemp(prefix="hsiclip-fuzz-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def bounded_memory() -> Iterator[None]:
    """A damaged header can claim terabytes: cap the address space while fuzzing, so that a reader trusting such a
    header fails here (MemoryError, a bug) instead of swapping the machine or waking the OOM killer."""
    try:
        import resource
    except ImportError:  # not on Linux / macOS: run unguarded
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        with open("/proc/self/status") as f:
            vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, StopIteration):
        yield
        return
    cap = vm + (3 << 30)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# --- mutations ----------------------------------------------------------------------------------------------------


def _index(draw: Any, n: int) -> int:
    """A byte position, biased towards the first 256 bytes where the headers are."""
    return draw(st.integers(0, min(n, 256) - 1) | st.integers(0, n - 1))


@st.composite
def _mutated(draw: Any, data: bytes) -> bytes:
    """`data` damaged one to three times: truncated, bytes flipped, a span overwritten, junk before or after."""
    for _ in range(draw(st.integers(1, 3))):
        n = len(data)
        op = draw(st.sampled_from(["truncate", "flip", "overwrite", "prepend", "append"]))
        if op == "truncate" and n:
            data = data[:_index(draw, n)]
        elif op == "flip" and n:
            b = bytearray(data)
            for _ in range(draw(st.integers(1, 8))):
                b[_index(draw, n)] ^= draw(st.integers(1, 255))
            data = bytes(b)
        elif op == "overwrite" and n:
            i, junk = _index(draw, n), draw(st.binary(min_size=1, max_size=32))
            data = data[:i] + junk + data[i + len(junk):]
        elif op == "prepend":
            data = draw(st.binary(min_size=1, max_size=64)) + data
        else:
            data = data + draw(st.binary(min_size=1, max_size=64))
    return data


# --- .mat ---------------------------------------------------------------------------------------------------------


def _savemat(variables: dict[str, np.ndarray], **kw: Any) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, variables, **kw)
    return buf.getvalue()


_RNG = np.random.default_rng(0)
_CUBE = _RNG.normal(size=(6, 5, 4))
_GT = _RNG.integers(0, 4, size=(6, 5)).astype(np.uint8)
MAT_FILES = {
    f"{name}{'-z' if z else ''}": _savemat(variables, do_compression=z)
    for name, variables in {
        "cube": {"cube": _CUBE},
        "two": {"cube": _CUBE.astype(np.int16), "gt": _GT},
        "labels": {"gt": _GT},
    }.items()
    for z in (False, True)
}
MAT_FILES["v4"] = _savemat({"gt": _GT.astype(np.float64)}, format="4")
_KEYS = st.sampled_from(["cube", "gt", "missing", None])


def _check_array(a: Any, path: Path) -> None:
    assert isinstance(a, np.ndarray), f"{path}: read {type(a)}, not an array"
    # scipy puts a "Read error: ..." string in place of a variable it cannot decode
    assert not (a.dtype.kind == "U" and a.size == 1 and str(a).startswith("Read error")), f"{path}: {a}"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
@_budget(2500)
@given(base=st.sampled_from(sorted(MAT_FILES)), data=st.data(), key=_KEYS)
def test_damaged_mat_files(base: str, data: st.DataObject, key: str | None) -> None:
    blob = data.draw(_mutated(MAT_FILES[base]))
    with _scratch() as d:
        path = d / f"{STEM}.mat"
        path.write_bytes(blob)
        a = _outcome(lambda: read_array(path, key), path)
        if a is not None:
            _check_array(a, path)


def test_truncated_mat_with_a_missing_key_is_reported_as_truncated(tmp_path: Path) -> None:
    """Regression: when the full read fails, the file is corrupt or truncated, not merely missing the variable."""
    path = tmp_path / f"{STEM}.mat"
    blob = MAT_FILES["two"]
    path.write_bytes(blob[:200])  # cut inside the first variable, which a search for another name skips over
    with pytest.raises(DataError) as err:
        read_array(path, "missing")
    message = str(err.value)
    assert "cannot read this .mat file, it is corrupt or truncated" in message and str(path) in message
    assert "no variable" not in message and "\n" not in message


def test_mat_with_an_unknown_data_type_code_is_refused_before_scipy_crashes(tmp_path: Path) -> None:
    """Regression: scipy's v5 reader indexes a table with the values' type code unchecked (a segmentation fault)."""
    blob = bytearray(MAT_FILES["two"])
    assert blob[184:188] == b"\x03\x00\x00\x00"  # the cube's values: miINT16, after header, tag, flags, dims, name
    blob[184] = 0xD3
    path = tmp_path / f"{STEM}.mat"
    path.write_bytes(bytes(blob))
    for key in ("cube", "missing"):  # the variable itself, and the full read behind "no variable"
        with pytest.raises(DataError, match=r"corrupt \(a variable's values have the unknown data type code 211\)"):
            read_array(path, key)


# --- .npy ---------------------------------------------------------------------------------------------------------


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


NPY_FILES = {
    "cube-f4": _npy(_CUBE.astype(np.float32)),
    "cube-fortran": _npy(np.asfortranarray(_CUBE)),
    "labels-u1": _npy(_GT),
    "vector-i8": _npy(np.arange(5, dtype=">i8")),
    "scalar": _npy(np.float32(3.0)),
}
_DESCR = st.sampled_from(["'<f4'", "'|u1'", "'>i8'", "'<f8'", "'|b1'", "'<c16'", "'O'", "'|O'", "'<U4'", "'|S3'",
                          "'|V8'", "[('a', '<f4')]", "'<M8[s]'", "'xyz'", "1", "None", "''"]) | st.text(max_size=8).map(
    repr)
_DIM = st.integers(-2, 8) | st.sampled_from([2**31, 2**40, 2**63 - 1, 2**64])
_SHAPE = st.lists(_DIM, max_size=4).map(lambda s: "(" + "".join(f"{n}, " for n in s) + ")") | st.sampled_from(
    ["[2, 3]", "(2.5,)", "'x'", "None", "(", "(3, 'a')"])


@st.composite
def _npy_headers(draw: Any) -> bytes:
    """A .npy file built by hand from drawn header fields and payload."""
    valid = {"descr": "'<f4'", "fortran_order": "False", "shape": "(2, 3)"}  # each field drawn or left valid
    drawn = {"descr": _DESCR, "fortran_order": st.sampled_from(["True", "0", "'yes'"]), "shape": _SHAPE}
    fields = {k: draw(st.sampled_from([v, v, "drawn"])) for k, v in valid.items()}
    fields = {k: draw(drawn[k]) if v == "drawn" else v for k, v in fields.items()}
    if draw(st.integers(0, 5)) == 0:
        del fields[draw(st.sampled_from(sorted(fields)))]
    if draw(st.integers(0, 5)) == 0:
        fields["extra"] = "1"
    text = "{" + "".join(f"'{k}': {v}, " for k, v in fields.items()) + "}"
    if draw(st.integers(0, 8)) == 0:
        text = draw(st.text(max_size=40))
    major, minor = draw(st.sampled_from([(1, 0), (1, 0), (1, 0), (2, 0), (3, 0), (0, 0), (9, 9)]))
    header = text.encode("utf-8" if major == 3 else "latin-1", errors="replace")
    size_len = 2 if major == 1 else 4
    pad = -(6 + 2 + size_len + len(header) + 1) % 64
    header += b" " * pad + b"\n"
    length = len(header) if draw(st.integers(0, 3)) else draw(st.integers(0, 2 ** (8 * size_len) - 1))
    size = draw(st.sampled_from([24, 24, 48, 0]) | st.integers(0, 256))  # (2, 3) float32 values are 24 bytes
    payload = draw(st.binary(min_size=size, max_size=size))
    return (b"\x93NUMPY" + bytes([major, minor]) + length.to_bytes(size_len, "little") + header + payload)


def _check_npy(path: Path) -> None:
    a = _outcome(lambda: read_array(path), path)
    if a is not None:
        _check_array(a, path)
    _check_cube(path, None)


def _check_cube(path: Path, key: str | None) -> np.ndarray | None:
    """CubeSource(path) and its whole read: a valid cube (returned) or one clear error (None)."""
    src = _outcome(lambda: CubeSource(path, key), path)
    if src is None:
        return None
    assert len(src.shape) == 3 and all(isinstance(n, int) and n > 0 for n in src.shape), src.shape
    out = _outcome(src.read, path)
    if out is not None:
        assert out.dtype == np.float32 and out.shape == src.shape and np.isfinite(out).all()
    return out


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
@_budget(2000)
@given(base=st.sampled_from(sorted(NPY_FILES)), data=st.data())
def test_damaged_npy_files(base: str, data: st.DataObject) -> None:
    blob = data.draw(_mutated(NPY_FILES[base]))
    with _scratch() as d:
        path = d / f"{STEM}.npy"
        path.write_bytes(blob)
        _check_npy(path)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
@_budget(2000)
@given(blob=_npy_headers())
def test_npy_files_with_drawn_headers(blob: bytes) -> None:
    with _scratch() as d:
        path = d / f"{STEM}.npy"
        path.write_bytes(blob)
        _check_npy(path)


# --- ENVI pairs and GeoTIFF labels --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rasters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    """Valid ENVI pairs (a 4-band float32 cube, a 1-band uint8 label raster) and a GeoTIFF label raster, as bytes."""
    d = tmp_path_factory.mktemp("fuzz-rasters")
    out: dict[str, dict[str, bytes]] = {}
    for name, cube in {"cube": _CUBE.astype(np.float32), "labels": _GT[..., None]}.items():
        img = write_envi(d / name, cube)
        out[name] = {".hdr": img.with_suffix(".hdr").read_bytes(), ".img": img.read_bytes()}
    out["tif"] = {".tif": write_labels_tif(d / "labels.tif", _GT).read_bytes()}
    return out


_HDR_FIELDS = ["samples", "lines", "bands", "header offset", "file type", "data type", "interleave", "byte order"]
_HDR_VALUES = (st.integers(-2, 12) | st.sampled_from([0, 2**31, 2**40, 10**20])).map(str) | st.sampled_from(
    ["bsq", "bil", "bip", "BIP", "xyz", "", "ENVI Standard", "4.5", "1e3", "{1, 2}", "é", "ÿ\u0000", "日本"]) | st.text(
    max_size=8)


@st.composite
def _envi_headers(draw: Any, hdr: bytes) -> bytes:
    """The .hdr text with lines dropped, duplicated or garbled and fields set to drawn values, in a drawn encoding."""
    lines = hdr.decode("ascii").splitlines()
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["drop", "duplicate", "garble", "set", "set"]))
        i = draw(st.integers(0, len(lines) - 1)) if lines else 0
        if op == "drop" and lines:
            del lines[i]
        elif op == "duplicate" and lines:
            lines.insert(i, lines[i])
        elif op == "garble" and lines:
            lines[i] = draw(st.text(max_size=30))
        else:
            field, value = draw(st.sampled_from(_HDR_FIELDS)), draw(_HDR_VALUES)
            at = [j for j, line in enumerate(lines) if line.split("=")[0].strip() == field]
            if at:
                lines[at[0]] = f"{field} = {value}"
            else:
                lines.append(f"{field} = {value}")
    text = "\n".join(lines) + "\n"
    encoding = draw(st.sampled_from(["ascii", "utf-8", "latin-1", "utf-16"]))
    blob = text.encode(encoding, errors="replace")
    if draw(st.integers(0, 5)) == 0:
        blob = draw(_mutated(blob))
    return blob


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
@_budget(2000)
@given(base=st.sampled_from(["cube", "labels"]), data=st.data(), open_hdr=st.booleans())
def test_damaged_envi_pairs(rasters: dict[str, dict[str, bytes]], base: str, data: st.DataObject,
                            open_hdr: bool) -> None:
    hdr = rasters[base][".hdr"]
    if data.draw(st.integers(0, 3), label="hdr damaged unless 0") != 0:
        hdr = data.draw(_envi_headers(hdr), label="hdr")
    img = rasters[base][".img"]
    if data.draw(st.booleans(), label="img truncated"):
        img = img[:data.draw(st.integers(0, len(img) - 1), label="img length")]
    with _scratch() as d:
        (d / f"{STEM}.hdr").write_bytes(hdr)
        (d / f"{STEM}.img").write_bytes(img)
        path = d / (f"{STEM}.hdr" if open_hdr else f"{STEM}.img")
        cube = _check_cube(path, None)
        labels = _check_labels(path)
        if hdr == rasters[base][".hdr"] and len(img) < len(rasters[base][".img"]):  # GDAL would read zeros
            assert cube is None and labels is None, "a truncated ENVI data file was read"


def _check_labels(path: Path) -> np.ndarray | None:
    """read_labels(path): a non-empty 2-D raster (returned) or one clear error (None)."""
    found = _outcome(lambda: read_labels(path), path)
    if found is None:
        return None
    labels, _ = found
    assert isinstance(labels, np.ndarray) and labels.ndim == 2 and labels.size, getattr(labels, "shape", labels)
    return labels


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
@_budget(2000)
@given(data=st.data())
def test_damaged_geotiff_labels(rasters: dict[str, dict[str, bytes]], data: st.DataObject) -> None:
    blob = data.draw(_mutated(rasters["tif"][".tif"]))
    with _scratch() as d:
        path = d / f"{STEM}.tif"
        path.write_bytes(blob)
        _check_labels(path)


# --- class files (TOML / YAML) ------------------------------------------------------------------------------------

_SCALAR = st.none() | st.booleans() | st.integers(-3, 6) | st.floats() | st.text(max_size=10)
_VALUE = st.recursive(_SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=6), inner, max_size=3), max_leaves=6)
_NAMES = st.sampled_from(["Water", "Corn", "Trees", "Soil"]) | st.text(max_size=8)


@st.composite
def _class_files(draw: Any) -> dict:
    """Mostly well-formed class files with drawn damage: wrong types, missing, unknown and duplicate entries."""

    def damaged() -> bool:
        return draw(st.integers(0, 5)) == 0

    n = draw(st.sampled_from([1, 2, 3, 4, 0]))
    names = draw(st.lists(_NAMES, min_size=n, max_size=n, unique=not damaged()))
    classes: list[Any] = []
    for i in range(n):
        c: dict[str, Any] = {"label": draw(st.integers(0, n + 1) | _VALUE) if damaged() else i + 1,
                             "name": draw(_VALUE) if damaged() else names[i]}
        for key in ("short", "descriptive"):
            if draw(st.booleans()):
                c[key] = draw(_VALUE) if damaged() else draw(st.text(max_size=10))
        if draw(st.booleans()):
            c["variants"] = draw(_VALUE) if damaged() else draw(st.lists(st.text(max_size=8), max_size=3))
        if damaged():
            c[draw(st.text(min_size=1, max_size=6))] = draw(_VALUE)
        if damaged():
            del c[draw(st.sampled_from(sorted(c)))]
        classes.append(draw(_VALUE) if draw(st.integers(0, 12)) == 0 else c)
    data: dict[str, Any] = {"scene": draw(st.just("fuzz") | _VALUE), "classes": classes}
    if draw(st.integers(0, 12)) == 0:
        data["classes"] = draw(_VALUE)
    if draw(st.integers(0, 12)) == 0:
        del data["classes"]
    return data


def _toml_value(v: Any) -> str:
    """A small TOML writer for drawn values (None has no TOML form and becomes a string)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(map(_toml_value, v)) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return json.dumps("None" if v is None else v, ensure_ascii=False)


def _toml(data: dict) -> str:
    classes = data.get("classes")
    tables = isinstance(classes, list) and bool(classes) and all(isinstance(c, dict) for c in classes)
    out = [f"{json.dumps(k, ensure_ascii=False)} = {_toml_value(v)}" for k, v in data.items()
           if not (k == "classes" and tables)]
    for c in classes if tables else []:
        out += ["", "[[classes]]", *(f"{json.dumps(k, ensure_ascii=False)} = {_toml_value(v)}" for k, v in c.items())]
    return "\n".join(out) + "\n"


def _reference(blob: bytes, suffix: str) -> Any:
    """What an independent parser makes of the bytes (an exception when they are not UTF-8 TOML / YAML)."""
    text = blob.decode("utf-8")
    return tomllib.loads(text) if suffix == ".toml" else yaml.safe_load(text)


def _check_faithful(prompts: list[ClassPrompt], data: Any) -> None:
    """Loaded prompts are exactly the classes of the file, well typed; wrong types must not be coerced."""
    assert isinstance(data, dict) and isinstance(data["classes"], list) and prompts, data
    assert len(prompts) == len(data["classes"])
    for p, c in zip(prompts, data["classes"], strict=True):
        assert isinstance(c, dict) and set(c) <= set(CLASS_KEYS), c
        assert type(c["label"]) is int and p.label == c["label"], (p, c)
        assert isinstance(c["name"], str) and p.name == c["name"], (p, c)
        assert p.short == c.get("short", c["name"]) and isinstance(p.short, str), (p, c)
        assert p.descriptive == c.get("descriptive", p.short) and isinstance(p.descriptive, str), (p, c)
        variants = c.get("variants", [])
        assert isinstance(variants, list) and all(isinstance(v, str) for v in variants), (p, c)
        assert p.variants == tuple(variants), (p, c)
    assert [p.label for p in prompts] == list(range(1, len(prompts) + 1))
    assert len({p.name for p in prompts}) == len(prompts)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
@_budget(2500)
@given(data=_class_files(), suffix=st.sampled_from([".toml", ".yaml", ".yml"]), damage=st.integers(0, 9),
       draw=st.data())
def test_drawn_class_files(data: dict, suffix: str, damage: int, draw: st.DataObject) -> None:
    text = _toml(data) if suffix == ".toml" else yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    blob = text.encode("utf-8")
    if damage == 0:  # not UTF-8 at all
        blob = text.encode("utf-16") if draw.draw(st.booleans()) else b"\xff\xfe\x80" + blob
    elif damage == 1:
        blob = draw.draw(_mutated(blob))
    elif damage == 2:
        blob = text.encode("latin-1", errors="replace")
    with _scratch() as d:
        path = d / f"{STEM}{suffix}"
        path.write_bytes(blob)
        prompts = _outcome(lambda: load_prompt_set(path), path)
        if prompts is not None:
            _check_faithful(prompts, _reference(blob, ".toml" if suffix == ".toml" else ".yaml"))
