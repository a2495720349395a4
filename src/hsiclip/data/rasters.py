"""Cubes and label rasters from the files people have: .mat, .npy, ENVI (.hdr + data file) and GeoTIFF.

`CubeSource` reads any window of the cube on demand, so a scene larger than memory is
classified tile by tile (`hsiclip predict`); ENVI and GeoTIFF files are read with rasterio (GDAL), windowed, and
their georeferencing (CRS + affine transform) travels with the cube so that the class map can keep it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, plural
from .io import error_text, open_npy, read_array, read_mat

GDAL_CACHE_MB = 64  # GDAL's block cache, bounded so that memory stays flat however large the scene
_ENVI_DATA = ("", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip")
_GDAL_SUFFIXES = {".tif", ".tiff", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip", ".hdr", ".vrt"}


@dataclass(frozen=True)
class Georef:
    """Where the pixels are on the ground: a rasterio CRS and an affine transform (either may be None)."""

    crs: Any = None
    transform: Any = None

    @property
    def present(self) -> bool:
        return self.crs is not None


def _gdal_path(path: Path) -> Path:
    """ENVI: the header names the data file beside it (same stem, no or a usual extension)."""
    if path.suffix.lower() != ".hdr":
        return path
    for ext in _ENVI_DATA:
        candidate = path.with_suffix(ext)
        if candidate.is_file():
            return candidate
    raise DataError(f"{path}: ENVI header without its data file (looked for {path.stem} with "
                    f"{', '.join(e or 'no extension' for e in _ENVI_DATA)})")


def gdal_env() -> Any:
    """rasterio's environment with GDAL's block cache bounded (`GDAL_CACHE_MB`)."""
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)


def _open_gdal(path: Path) -> Any:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        return rasterio.open(path)
    except RasterioIOError as e:
        raise DataError(f"{path}: cannot read this raster ({error_text(e)})") from None


def _read_gdal(ds: Any, path: Path, *args: Any, **kw: Any) -> np.ndarray:
    """ds.read(...), a damaged file's failure (a truncated or corrupt TIFF strip or tile) as one DataError."""
    from rasterio.errors import RasterioIOError

    try:
        return ds.read(*args, **kw)
    except RasterioIOError as e:  # "Read failed. See previous exception": GDAL's own reason is the cause
        raise DataError(f"{path}: cannot read the values of this raster, it is corrupt or truncated "
                        f"({error_text(e.__cause__ or e)})") from None


def _check_complete(ds: Any, path: Path) -> None:
    """GDAL reads the missing end of a raw (ENVI) data file as zeros: refuse a data file shorter than its header
    says."""
    if ds.driver != "ENVI":
        return
    try:
        offset = int(ds.tags(ns="ENVI").get("header_offset", 0))
    except ValueError:  # a header offset GDAL parsed leniently: check the values alone
        offset = 0
    need = offset + ds.width * ds.height * ds.count * np.dtype(ds.dtypes[0]).itemsize
    data = Path(ds.name)
    if (have := data.stat().st_size) < need:
        raise DataError(f"{path}: the ENVI data file {data.name} is truncated: its header describes {ds.height}x"
                        f"{ds.width} pixels of {plural(ds.count, 'band')} in {ds.dtypes[0]} ({need:,} bytes from "
                        f"offset {offset:,}) but the file holds {have:,} bytes")


class CubeSource:
    """An (H, W, B) cube in a file, read whole or by windows as float32."""

    def __init__(self, path: Path | str, key: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: no such file")
        suffix = self.path.suffix.lower()
        self._array: np.ndarray | None = None
        self.georef = Georef()
        if suffix == ".mat":
            if key is None:
                raise DataError(f"{self.path}: a .mat file needs the name of the variable to read (--cube-key)")
            self._array = read_mat(self.path, key)
            self.kind, shape = "mat", self._array.shape
        elif suffix == ".npy":
            head = open_npy(self.path)
            self.kind, shape = "npy", head.shape
            del head
        elif suffix in _GDAL_SUFFIXES:
            self.kind = "gdal"
            self._gdal = _gdal_path(self.path)
            with gdal_env(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # NotGeoreferencedWarning: a plain array is fine
                with _open_gdal(self._gdal) as ds:
                    _check_complete(ds, self.path)
                    shape = (ds.height, ds.width, ds.count)
                    self.georef = Georef(ds.crs, ds.transform if ds.crs is not None else None)
        else:
            raise DataError(f"{self.path}: unsupported cube file {suffix!r} (expected .mat, .npy, ENVI .hdr/.img "
                            "or GeoTIFF .tif)")
        if len(shape) != 3 or 0 in shape:
            raise DataError(f"{self.path}: the cube must be a non-empty 3-D array (H, W, bands), got shape {shape}")
        self.shape: tuple[int, int, int] = (int(shape[0]), int(shape[1]), int(shape[2]))

    def read(self, r0: int = 0, r1: int | None = None, c0: int = 0, c1: int | None = None) -> np.ndarray:
        """Rows r0:r1 and columns c0:c1 of the cube, (h, w, B) float32 (the whole cube by default)."""
        h, w, _ = self.shape
        r1, c1 = h if r1 is None else r1, w if c1 is None else c1
        if self._array is not None:
            out = self._array[r0:r1, c0:c1]
        elif self.kind == "npy":
            mm = open_npy(self.path)  # mapped for this read only, then released
            out = np.array(mm[r0:r1, c0:c1])
            del mm
        else:
            from rasterio.windows import Window

            with gdal_env(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with _open_gdal(self._gdal) as ds:
                    out = _read_gdal(ds, self.path, window=Window(c0, r0, c1 - c0, r1 - r0)).transpose(1, 2, 0)
        if out.dtype.kind not in "biuf":
            raise DataError(f"{self.path}: the cube holds {out.dtype} values, expected real numbers")
        out = out.astype(np.float32, copy=False)
        if not np.isfinite(out).all():
            bad = ~np.isfinite(out).all(axis=2)
            rows, cols = np.nonzero(bad)
            first = ", ".join(f"({r0 + r}, {c0 + c})" for r, c in zip(rows[:3], cols[:3], strict=True))
            where = " of the part read" if (r0, c0, r1, c1) != (0, 0, h, w) else ""
            raise DataError(f"{self.path}: the cube holds NaN or infinite values in {plural(int(bad.sum()), 'pixel')}"
                            f"{where}, first at (row, column) {first}; fill or mask them first")
        return out


class ArraySource:
    """An (H, W, B) array in memory behind the `CubeSource` interface (no georeferencing)."""

    def __init__(self, cube: np.ndarray) -> None:
        if cube.ndim != 3 or 0 in cube.shape:
            raise DataError(f"the cube must be a non-empty 3-D array (H, W, bands), got shape {cube.shape}")
        self.path = Path("<array>")
        self.georef = Georef()
        self.shape: tuple[int, int, int] = (int(cube.shape[0]), int(cube.shape[1]), int(cube.shape[2]))
        self._array = cube

    def read(self, r0: int = 0, r1: int | None = None, c0: int = 0, c1: int | None = None) -> np.ndarray:
        return np.asarray(self._array[r0:r1, c0:c1], dtype=np.float32)


def read_labels(path: Path | str, key: str | None = None) -> tuple[np.ndarray, Georef]:
    """A 2-D label raster (0 = unlabelled, 1..C) and its georeferencing."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".mat", ".npy") or not path.is_file():
        return read_array(path, key), Georef()
    if suffix in _GDAL_SUFFIXES:
        with gdal_env(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with _open_gdal(_gdal_path(path)) as ds:
                _check_complete(ds, path)
                if ds.count != 1:
                    raise DataError(f"{path}: a label raster has one band, this file has {ds.count}")
                return _read_gdal(ds, path, 1), Georef(ds.crs, ds.transform if ds.crs is not None else None)
    raise DataError(f"{path}: unsupported label file {suffix!r} (expected .mat, .npy, ENVI or GeoTIFF)")


def check_aligned(cube: CubeSource, labels: np.ndarray, georef: Georef, labels_path: Path | str) -> None:
    """The label raster covers the cube pixel for pixel: same size and, where both are georeferenced, the same
    projection and grid."""
    if labels.shape != cube.shape[:2]:
        raise DataError(f"{labels_path}: the label raster is {labels.shape[0]}x{labels.shape[1]} pixels but the cube "
                        f"{cube.path} is {cube.shape[0]}x{cube.shape[1]}")
    if cube.georef.present and georef.present:
        if cube.georef.crs != georef.crs:
            raise DataError(f"{labels_path}: the label raster's projection ({georef.crs}) differs from the cube's "
                            f"({cube.georef.crs}); reproject one onto the other first")
        if not np.allclose(tuple(cube.georef.transform), tuple(georef.transform)):
            raise DataError(f"{labels_path}: the label raster's pixel grid ({tuple(georef.transform)[:6]}) is not "
                            f"the cube's ({tuple(cube.georef.transform)[:6]}); resample one onto the other first")


def write_envi(path: Path | str, cube: np.ndarray, georef: Georef | None = None) -> Path:
    """Write an (H, W, B) cube as ENVI (a .hdr + .img pair, band-interleaved by pixel) with rasterio."""
    import rasterio

    path = Path(path).with_suffix(".img")
    h, w, b = cube.shape
    kw: dict[str, Any] = {}
    if georef is not None and georef.present:
        kw = {"crs": georef.crs, "transform": georef.transform}
    with gdal_env(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", driver="ENVI", height=h, width=w, count=b, dtype=cube.dtype,
                           interleave="bip", **kw) as dst:
            dst.write(np.ascontiguousarray(cube.transpose(2, 0, 1)))
    return path


def write_labels_tif(path: Path | str, labels: np.ndarray, georef: Georef | None = None) -> Path:
    """Write a 2-D label raster as a GeoTIFF (uint8, or uint16 beyond 255 classes)."""
    import rasterio

    path = Path(path)
    kw: dict[str, Any] = {}
    if georef is not None and georef.present:
        kw = {"crs": georef.crs, "transform": georef.transform}
    dtype = "uint8" if labels.max() < 256 else "uint16"
    with gdal_env(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", driver="GTiff", height=labels.shape[0], width=labels.shape[1], count=1,
                           dtype=dtype, compress="deflate", **kw) as dst:
            dst.write(labels.astype(dtype), 1)
    return path


def export_scene(scene: Any, out: Path | str) -> list[Path]:
    """A registered scene as a user would have it: `out`/NAME.hdr + NAME.img (ENVI), NAME_labels.tif and
    NAME_classes.toml (its prompt set), NAME the scene's; returns the paths written."""
    from importlib import resources

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cube = write_envi(out / scene.name, scene.cube)
    labels = write_labels_tif(out / f"{scene.name}_labels.tif", scene.labels)
    classes = out / f"{scene.name}_classes.toml"
    classes.write_text(resources.files("hsiclip.text.prompt_sets").joinpath(f"{scene.name}.toml").read_text())
    return [cube.with_suffix(".hdr"), cube, labels, classes]
