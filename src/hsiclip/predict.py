"""Classify every pixel of a cube of any size with a trained run, tile by tile, in flat memory.

The cube is read one tile at a time with a halo of half a window (`CubeSource.read`), preprocessed as in training
and classified (`classify_tiles`); `predict_cube` writes the class map and the confidence a strip of tiles at a
time (.npy and GeoTIFF), so memory holds one tile of the cube and one strip of the outputs whatever the scene's
size. Each tile's result is exactly what a whole-scene pass gives: halo pixels come from the neighbouring tiles,
and beyond the scene's edge the windows see the same zero padding as in training.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from .data.preprocess import Preprocessing
from .data.rasters import ArraySource, CubeSource, gdal_env
from .data.windows import WindowSampler
from .engine import predict
from .errors import DataError
from .models import StemMapClassifier
from .models.inference import for_inference
from .paths import atomic_dir, check_writable

COMPILE_FROM = 250_000  # pixels: `compile="auto"` compiles the model for scenes at least this large (it costs ~10-20 s)
OUTPUTS = ("classes_map.png", "classes.tif", "classes.qml", "classes.png", "classes.npy", "confidence.tif",
           "confidence.npy", "summary.json")  # what `predict_cube` writes
Tile = tuple[int, int, int, int]  # rows r0:r1, columns c0:c1


class TrainedClassifier(Protocol):
    """What prediction needs of a run (`run.Run`)."""

    model: torch.nn.Module
    preprocess: Preprocessing
    class_names: tuple[str, ...]

    @property
    def window(self) -> int: ...


def class_colors(num_classes: int) -> np.ndarray:
    """(C + 1, 4) RGBA: black for unlabelled (0), then distinct colours for classes 1..C (every figure's)."""
    from matplotlib import colormaps

    if num_classes > 20:
        return np.vstack([[0, 0, 0, 1], colormaps["gist_ncar"](np.linspace(0.05, 0.95, num_classes))])
    base = colormaps["tab20"](np.linspace(0, 1, 20))
    return np.vstack([[0, 0, 0, 1], base[np.r_[0:20:2, 1:20:2][:num_classes]]])


def palette_png(classes: np.ndarray, num_classes: int, path: Path) -> None:
    """The class map as an indexed-colour PNG (one byte per pixel), the colours of every other figure."""
    from PIL import Image

    rgb = (class_colors(num_classes)[:, :3] * 255).round().astype(np.uint8)
    if num_classes < 256:
        img = Image.fromarray(classes.astype(np.uint8, copy=False), mode="P")
        img.putpalette(rgb.reshape(-1).tolist())
    else:
        img = Image.fromarray(rgb[classes])
    img.save(path, optimize=False)


def _hex(rgba: np.ndarray) -> str:
    return "#" + "".join(f"{round(float(v) * 255):02x}" for v in rgba[:3])


def write_qml(path: Path, class_names: tuple[str, ...] | list[str]) -> None:
    """A QGIS style beside classes.tif (QGIS loads NAME.qml with NAME.tif): a paletted renderer naming each class
    in the colours of every other figure, unlabelled (0) transparent."""
    from xml.sax.saxutils import quoteattr

    colors = class_colors(len(class_names))
    entries = "\n".join(f'          <paletteEntry value="{i}" color="{_hex(colors[i])}" alpha="255" '
                         f"label={quoteattr(f'{i} {n}')}/>" for i, n in enumerate(class_names, 1))
    path.write_text(f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.28" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="paletted" band="1" opacity="1" nodataColor="">
      <colorPalette>
{entries}
      </colorPalette>
    </rasterrenderer>
  </pipe>
</qgis>
""")


def prediction_figure(classes: np.ndarray, class_names: tuple[str, ...] | list[str], georef: Any, title: str,
                      path: Path, max_side: int = 2000) -> None:
    """The class map as people read it: a legend with each class's share of the pixels, a title, and map
    coordinates with a scale bar when the cube is georeferenced in metres (else pixel rows and columns). Scenes
    larger than `max_side` pixels a side are drawn from every k-th pixel (said in the caption)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    c = len(class_names)
    h, w = classes.shape
    step = max(1, -(-max(h, w) // max_side))
    shown = np.asarray(classes[::step, ::step])
    counts = np.bincount(shown.reshape(-1), minlength=c + 1)[1:]
    share = 100 * counts / max(1, shown.size)
    cmap = ListedColormap(class_colors(c))
    fig, ax = plt.subplots(figsize=(6.4 * min(1.6, max(0.6, w / h)) + 3.4, 6.0), constrained_layout=True)
    extent, metres = None, False
    if georef is not None and georef.present and georef.transform is not None:
        t = georef.transform
        extent = (t.c, t.c + t.a * w, t.f + t.e * h, t.f)
        metres = bool(getattr(georef.crs, "is_projected", False))
    ax.imshow(shown, cmap=cmap, vmin=0, vmax=c, interpolation="nearest", extent=extent)
    if extent is None:
        ax.set_xlabel("column (pixels)")
        ax.set_ylabel("row (pixels)")
    else:
        unit = "m" if metres else "°"
        ax.set_xlabel(f"easting ({unit})" if metres else "longitude (°)")
        ax.set_ylabel(f"northing ({unit})" if metres else "latitude (°)")
        ax.ticklabel_format(useOffset=False, style="plain")
    if metres:
        from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

        width_m = abs(georef.transform.a) * w
        bar = 10 ** np.floor(np.log10(width_m / 4))
        bar *= 5 if 5 * bar <= width_m / 4 else 2 if 2 * bar <= width_m / 4 else 1
        ax.add_artist(AnchoredSizeBar(ax.transData, bar, f"{bar / 1000:g} km" if bar >= 1000 else f"{bar:g} m",
                                      "lower left", pad=0.4, color="white", frameon=False, size_vertical=0))
    handles = [Patch(color=cmap(i + 1), label=f"{i + 1} {n} ({share[i]:.1f}%)") for i, n in enumerate(class_names)]
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False, title="class (share)",
               title_fontsize=8)
    ax.set_title(title + (f"\n(every {step}th pixel drawn)" if step > 1 else ""), fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


class StemTokens(torch.nn.Module):
    """A stem-map classifier's `classify_stem_tokens` as a module: what `for_inference` compiles."""

    def __init__(self, model: StemMapClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, C)
        return self.model.classify_stem_tokens(tokens)


def classify_stem_map(net: torch.nn.Module, stem_map: torch.Tensor, offsets: torch.Tensor, rows: np.ndarray,
                      cols: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Class (0..C-1) and confidence of the windows with top-left pixels (rows, cols) of a padded tile, their tokens
    gathered from the tile's `stem_map` (H', W', D) at `offsets` (N, 2) instead of recomputed per window."""
    rows_t = torch.as_tensor(rows.reshape(-1, 1), device=stem_map.device)
    cols_t = torch.as_tensor(cols.reshape(-1, 1), device=stem_map.device)
    preds, confs = [], []
    for s in range(0, len(rows_t), batch_size):
        tokens = stem_map[rows_t[s : s + batch_size] + offsets[:, 0], cols_t[s : s + batch_size] + offsets[:, 1]]
        conf, pred = net(tokens).softmax(dim=1).max(dim=1)  # tokens: (B, N, D)
        preds.append(pred)
        confs.append(conf)
    return torch.cat(preds).cpu().numpy(), torch.cat(confs).cpu().numpy()


class TileClassifier:
    """A run's model ready to classify the tiles of a cube: `(tile, block) -> (pred, conf)`, the class and confidence
    of each pixel of `tile`, read with its halo (`block`, both as given by `tiles`). Built once per process or Ray
    actor, which reads its tiles from the cube itself: only tile coordinates travel to it, so its memory is that of
    one tile however large the scene (`benchmarks/scale_out.py` measures it)."""

    def __init__(self, run: TrainedClassifier, cube: CubeSource | ArraySource, batch_size: int = 64,
                 device: str = "cpu", compile: bool = False):
        self.run, self.cube, self.batch_size, self.device = run, cube, batch_size, device
        self.model = run.model.to(device).eval()
        self.by_stem = isinstance(self.model, StemMapClassifier)
        r = run.window // 2
        if self.by_stem:
            self.offsets = self.model.stem_offsets().to(device)  # (N, 2)
            self.net = for_inference(StemTokens(self.model), torch.zeros(len(self.offsets), self.model.stem_width,
                                                                         device=device), batch_size, compile=compile)
        else:
            example = torch.zeros(2 * r + 1, 2 * r + 1, run.preprocess.channels, device=device)
            self.net = for_inference(self.model, example, batch_size, compile=compile)

    def __call__(self, item: tuple[Tile, Tile]) -> tuple[np.ndarray, np.ndarray]:
        (r0, r1, c0, c1), (a0, a1, b0, b1) = item
        block = self.cube.read(a0, a1, b0, b1)
        rows, cols = np.mgrid[r0 - a0 : r1 - a0, c0 - b0 : c1 - b0]
        with torch.inference_mode():
            sampler = WindowSampler(self.run.preprocess.transform(block), 2 * (self.run.window // 2) + 1,
                                    self.device)
            if self.by_stem:  # the window of pixel (row, col) starts at (row, col) of the padded tile
                out = classify_stem_map(self.net, self.model.stem_map(sampler.padded), self.offsets, rows, cols,
                                        self.batch_size)
            else:
                out = predict(self.net, sampler, (rows * block.shape[1] + cols).reshape(-1), self.batch_size,
                              progress=False)
        del block, sampler
        _release_freed_memory()
        return out


def _release_freed_memory() -> None:
    """Hand the memory freed by a tile back to the system (glibc keeps it otherwise, so a worker's resident size
    would stay at its largest tile's working set); a no-op where glibc's `malloc_trim` is missing."""
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).malloc_trim(0)


def tiles(shape: tuple[int, ...], tile: int, window: int) -> Iterator[tuple[Tile, Tile]]:
    """Each tile (rows r0:r1, columns c0:c1), row by row, and its block: the tile and a halo of half a window,
    clipped to the scene (zero padding beyond it)."""
    if tile < 1:
        raise DataError(f"--tile must be positive (got {tile})")
    h, w, r = shape[0], shape[1], window // 2
    for r0 in range(0, h, tile):
        r1 = min(h, r0 + tile)
        for c0 in range(0, w, tile):
            c1 = min(w, c0 + tile)
            yield (r0, r1, c0, c1), (max(0, r0 - r), min(h, r1 + r), max(0, c0 - r), min(w, c1 + r))


def classify_tiles(run: TrainedClassifier, cube: CubeSource | ArraySource, *, tile: int = 256, batch_size: int = 64,
                   device: str = "cpu", compile: bool = False, progress: bool = False, executor: str = "local",
                   address: str | None = None, workers: int | None = None
                   ) -> Iterator[tuple[Tile, np.ndarray, np.ndarray]]:
    """Per tile, row by row: its rows and columns, and the class (0..C-1) and confidence of each of its pixels.

    Stem-map classifiers (our models) run their stem once per tile (`StemMapClassifier.stem_map`) and gather each
    window's tokens from it: neighbouring windows share them, so this skips most of the stem's work (the same
    outputs: tested). Other models classify window by window. `compile`: through `models.inference.for_inference`.
    `executor="ray"`: the tiles' coordinates go to Ray actors that each hold the model (and the cube's file handle
    or, for an in-memory cube, one shared copy) once (`executor.ordered_map`), a bounded number in flight; the
    results come back here in the same order.
    """
    h, w, _ = cube.shape
    grid = list(tiles(cube.shape, tile, run.window))
    if executor == "ray":
        from .executor import ordered_map

        def build() -> TileClassifier:  # runs in each actor
            return TileClassifier(run, cube, batch_size, device, compile)

        results: Iterator[tuple[np.ndarray, np.ndarray]] = ordered_map(build, iter(grid), address=address,
                                                                       workers=workers)
    else:
        results = map(TileClassifier(run, cube, batch_size, device, compile), grid)
    with tqdm(total=h * w, desc="predict", unit="px", unit_scale=True, disable=not progress, smoothing=0.1) as bar:
        for ((r0, r1, c0, c1), _), (pred, conf) in zip(grid, results, strict=True):
            bar.update(pred.size)
            yield (r0, r1, c0, c1), pred.reshape(r1 - r0, c1 - c0), conf.reshape(r1 - r0, c1 - c0)


def _geotiff(path: Path, h: int, w: int, dtype: str, cube: CubeSource, tile: int,
             class_names: tuple[str, ...] | None = None) -> Any:
    """A tiled GeoTIFF with the cube's georeferencing; a class map also gets its colour table (what GIS tools
    show without a style file)."""
    import rasterio

    kw: dict[str, Any] = {}
    if cube.georef.present:
        kw = {"crs": cube.georef.crs, "transform": cube.georef.transform}
    block = max(16, min(512, tile) // 16 * 16)  # GeoTIFF blocks are multiples of 16
    dst = rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=1, dtype=dtype, tiled=True,
                        blockxsize=block, blockysize=block, compress="deflate", **kw)
    if class_names is not None:
        rgba = (class_colors(len(class_names)) * 255).round().astype(int)
        dst.write_colormap(1, {i: tuple(int(v) for v in rgba[i]) for i in range(len(rgba))})
        dst.update_tags(1, **{f"CLASS_{i}": n for i, n in enumerate(class_names, 1)})
    return dst


def _write_strip(folder: Path, r0: int, r1: int, strips: dict[str, np.ndarray], tifs: dict[str, Any]) -> None:
    """Rows r0:r1 of the .npy maps (mapped for this strip only, then released) and of the GeoTIFFs."""
    from rasterio.windows import Window

    for name, strip in strips.items():
        mm = np.load(folder / f"{name}.npy", mmap_mode="r+")
        mm[r0:r1] = strip
        mm.flush()
        del mm
        tifs[name].write(strip, 1, window=Window(0, r0, strip.shape[1], r1 - r0))


def _check_request(run: TrainedClassifier, cube: CubeSource, out_dir: Path, compile: str, overwrite: bool,
                   executor: str = "local", batch_size: int = 64) -> None:
    if batch_size < 1:
        raise DataError(f"--batch-size must be positive (got {batch_size})")
    check_writable(out_dir)
    if cube.shape[2] != run.preprocess.bands:
        raise DataError(f"{cube.path}: the cube has {cube.shape[2]} bands but the run was trained on "
                        f"{run.preprocess.bands}; predict with a run trained on this sensor's bands")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise DataError(f"{out_dir} exists and is not empty; choose another --out or add --overwrite")
    if compile not in ("auto", "yes", "no"):
        raise DataError(f"--compile must be auto, yes or no (got {compile!r})")
    if executor not in ("local", "ray"):
        raise DataError(f"--executor must be local or ray (got {executor!r})")


def predict_cube(run: TrainedClassifier, cube: CubeSource, out_dir: Path, *, tile: int = 256, batch_size: int = 64,
                 device: str = "cpu", progress: bool = True, overwrite: bool = False,
                 compile: str = "auto", executor: str = "local", address: str | None = None,
                 workers: int | None = None) -> dict[str, Any]:
    """Write `out_dir`/classes.{npy,tif,png} (labels 1..C) and confidence.{npy,tif} (softmax of the chosen class)
    for every pixel of `cube`; return a summary (pixels, seconds, pixels/s). Nothing is left half-written.

    `compile`: "yes" runs the model through `models.inference.for_inference` (heads-last attention, TorchInductor,
    on the CPU only), "no" runs it as trained, "auto" compiles for scenes of `COMPILE_FROM` pixels or more. Small
    batches keep the activations in cache: compiled, on one thread, 64 windows measured fastest of 32 to 512.
    `executor="ray"` classifies the tiles on Ray actors (`classify_tiles`); the outputs are written here, the same.
    """
    out_dir = Path(out_dir)
    _check_request(run, cube, out_dir, compile, overwrite, executor, batch_size)
    h, w, b = cube.shape
    c = len(run.class_names)
    dtype = np.uint8 if c < 256 else np.uint16
    compiled = str(device) == "cpu" and (compile == "yes" or (compile == "auto" and h * w >= COMPILE_FROM))
    compiled = compiled and any(True for _ in run.model.parameters())  # a pixel classifier has nothing to compile
    t0 = time.perf_counter()
    with atomic_dir(out_dir) as tmp:
        for name, kind in (("classes", dtype), ("confidence", np.float32)):
            np.lib.format.open_memmap(tmp / f"{name}.npy", mode="w+", dtype=kind, shape=(h, w)).flush()
        with gdal_env(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NotGeoreferencedWarning when the input has no georeferencing
            with _geotiff(tmp / "classes.tif", h, w, np.dtype(dtype).name, cube, tile, run.class_names) as cls_tif, \
                    _geotiff(tmp / "confidence.tif", h, w, "float32", cube, tile) as conf_tif:
                tifs = {"classes": cls_tif, "confidence": conf_tif}
                strips: dict[str, np.ndarray] = {}
                for (r0, r1, c0, c1), pred, conf in classify_tiles(run, cube, tile=tile, batch_size=batch_size,
                                                                   device=device, compile=compiled,
                                                                   progress=progress, executor=executor,
                                                                   address=address, workers=workers):
                    if c0 == 0:
                        strips = {"classes": np.empty((r1 - r0, w), dtype=dtype),
                                  "confidence": np.empty((r1 - r0, w), dtype=np.float32)}
                    strips["classes"][:, c0:c1] = pred + 1
                    strips["confidence"][:, c0:c1] = conf
                    if c1 == w:
                        _write_strip(tmp, r0, r1, strips, tifs)
        seconds = time.perf_counter() - t0
        classes = np.asarray(np.load(tmp / "classes.npy", mmap_mode="r"))
        palette_png(classes, c, tmp / "classes.png")
        write_qml(tmp / "classes.qml", run.class_names)
        prediction_figure(classes, run.class_names, cube.georef, f"{Path(cube.path).name}: classes predicted by "
                          f"{getattr(getattr(run, 'system', None), 'label', 'the run')}", tmp / "classes_map.png")
        counts = np.bincount(classes.reshape(-1), minlength=c + 1)[1:]
        summary = {"cube": str(cube.path), "shape": [h, w, b], "pixels": h * w, "seconds": seconds,
                   "pixels_per_s": h * w / seconds, "tile": tile, "batch_size": batch_size, "executor": executor,
                   "compiled": compiled, "stem_per_tile": isinstance(run.model, StemMapClassifier),
                   "georeferenced": cube.georef.present, "class_names": list(run.class_names),
                   "pixels_per_class": {n: int(k) for n, k in zip(run.class_names, counts, strict=True)}}
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
