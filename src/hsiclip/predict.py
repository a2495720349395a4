"""Classify every pixel of a cube of any size with a trained run, tile by tile, in flat memory.

The cube is read one tile at a time with a halo of half a window (`CubeSource.read`), projected with the run's PCA
and classified; the class map and the confidence are written a strip of tiles at a time (.npy and GeoTIFF), so
memory holds one tile of the cube and one strip of the outputs whatever the scene's size. Each tile's result is
exactly what a whole-scene pass gives: halo pixels come from the neighbouring tiles, and beyond the scene's edge
the windows see the same zero padding as in training.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .data.rasters import CubeSource, _env
from .data.windows import WindowSampler
from .engine import predict
from .errors import DataError
from .models.inference import FixedBatch, for_inference
from .run import Run, atomic_dir

COMPILE_FROM = 250_000  # pixels: `compile="auto"` compiles the model for scenes at least this large (it costs ~10-20 s)
OUTPUTS = ("classes.npy", "confidence.npy", "classes.tif", "confidence.tif", "classes.png", "summary.json")


def _geotiff(path: Path, h: int, w: int, dtype: str, cube: CubeSource, tile: int) -> Any:
    import rasterio

    kw: dict[str, Any] = {}
    if cube.georef.present:
        kw = {"crs": cube.georef.crs, "transform": cube.georef.transform}
    block = max(16, min(512, tile) // 16 * 16)  # GeoTIFF blocks are multiples of 16
    return rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=1, dtype=dtype, tiled=True,
                         blockxsize=block, blockysize=block, compress="deflate", **kw)


def palette_png(classes: np.ndarray, num_classes: int, path: Path) -> None:
    """The class map as an indexed-colour PNG (one byte per pixel), the colours of every other figure."""
    from PIL import Image

    from .plots import class_colors

    rgb = (class_colors(num_classes)[:, :3] * 255).round().astype(np.uint8)
    if num_classes < 256:
        img = Image.fromarray(classes.astype(np.uint8, copy=False), mode="P")
        img.putpalette(rgb.reshape(-1).tolist())
    else:
        img = Image.fromarray(rgb[classes])
    img.save(path, optimize=False)


class _StemTokens(torch.nn.Module):
    """A vision-language model's `classify_stem_tokens` as a module: what `for_inference` compiles."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, C)
        return self.model.classify_stem_tokens(tokens)


def _classify_stem_map(net: torch.nn.Module, stem_map: torch.Tensor, offsets: torch.Tensor, rows: np.ndarray,
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


def predict_cube(run: Run, cube: CubeSource, out_dir: Path, *, tile: int = 256, batch_size: int = 64,
                 device: str = "cpu", progress: bool = True, overwrite: bool = False,
                 compile: str = "auto") -> dict[str, Any]:
    """Write `out_dir`/classes.{npy,tif,png} (labels 1..C) and confidence.{npy,tif} (softmax of the chosen class)
    for every pixel of `cube`; return a summary (pixels, seconds, pixels/s). Nothing is left half-written.

    `compile`: "yes" runs the model through `models.inference.for_inference` (heads-last attention, TorchInductor,
    on the CPU only), "no" runs it as trained, "auto" compiles for scenes of `COMPILE_FROM` pixels or more. Small
    batches keep the activations in cache: compiled, on one thread, 64 windows measured fastest of 32 to 512.

    Our models' stems (3x3 patches or SSFTT's convolutions) run once per tile over all of it (`stem_map`), and each
    window gathers its tokens from that map: neighbouring windows share them, so this skips most of the stem's work
    (the same outputs: tested). Test-time augmentation and other models classify window by window.
    """
    h, w, b = cube.shape
    if b != run.pca.bands:
        raise DataError(f"{cube.path}: the cube has {b} bands but the run was trained on {run.pca.bands}; "
                        "predict with a run trained on this sensor's bands")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise DataError(f"{out_dir} exists and is not empty; choose another --out or add --overwrite")
    if tile < 1:
        raise DataError(f"--tile must be positive (got {tile})")
    if compile not in ("auto", "yes", "no"):
        raise DataError(f"--compile must be auto, yes or no (got {compile!r})")
    c = len(run.class_names)
    dtype = np.uint8 if c < 256 else np.uint16
    r = run.cfg.model.window // 2
    t0 = time.perf_counter()
    compiled = str(device) == "cpu" and (compile == "yes" or (compile == "auto" and h * w >= COMPILE_FROM))
    by_stem = hasattr(run.model, "classify_stem_tokens") and not run.cfg.train.tta
    if by_stem:
        offsets = run.model.stem_offsets().to(device)  # (N, 2)
        example = torch.zeros(len(offsets), run.cfg.model.dim * run.cfg.model.members, device=device)
        net = for_inference(_StemTokens(run.model), example, batch_size, compile=compiled)
    else:
        example = torch.zeros(2 * r + 1, 2 * r + 1, run.cfg.data.pca_components, device=device)
        net = for_inference(run.model, example, batch_size, compile=compiled)
    with atomic_dir(out_dir) as tmp:
        np.lib.format.open_memmap(tmp / "classes.npy", mode="w+", dtype=dtype, shape=(h, w)).flush()
        np.lib.format.open_memmap(tmp / "confidence.npy", mode="w+", dtype=np.float32, shape=(h, w)).flush()
        bar = tqdm(total=h * w, desc="predict", unit="px", unit_scale=True, disable=not progress, smoothing=0.1)
        with _env(), warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # NotGeoreferencedWarning when the input has no georeferencing
            with _geotiff(tmp / "classes.tif", h, w, np.dtype(dtype).name, cube, tile) as cls_tif, \
                    _geotiff(tmp / "confidence.tif", h, w, "float32", cube, tile) as conf_tif:
                for r0 in range(0, h, tile):
                    r1 = min(h, r0 + tile)
                    strip_cls = np.empty((r1 - r0, w), dtype=dtype)
                    strip_conf = np.empty((r1 - r0, w), dtype=np.float32)
                    for c0 in range(0, w, tile):
                        c1 = min(w, c0 + tile)
                        # the tile and a halo of half a window, clipped to the scene (zero padding beyond it)
                        a0, a1, b0, b1 = max(0, r0 - r), min(h, r1 + r), max(0, c0 - r), min(w, c1 + r)
                        sampler = WindowSampler(run.pca.transform(cube.read(a0, a1, b0, b1)), 2 * r + 1, device)
                        rows, cols = np.mgrid[r0 - a0 : r1 - a0, c0 - b0 : c1 - b0]
                        index = (rows * (b1 - b0) + cols).reshape(-1)
                        if by_stem:  # the window of pixel (row, col) starts at (row, col) of the padded tile
                            smap = run.model.stem_map(sampler.padded)
                            pred, conf = _classify_stem_map(net, smap, offsets, rows, cols, batch_size)
                        else:
                            pred, conf = predict(net, sampler, index, batch_size, progress=False,
                                                 tta=run.cfg.train.tta)
                        strip_cls[:, c0:c1] = (pred + 1).reshape(r1 - r0, c1 - c0)
                        strip_conf[:, c0:c1] = conf.reshape(r1 - r0, c1 - c0)
                        bar.update(len(index))
                    for name, strip in (("classes.npy", strip_cls), ("confidence.npy", strip_conf)):
                        mm = np.load(tmp / name, mmap_mode="r+")  # mapped for this strip only, then released
                        mm[r0:r1] = strip
                        mm.flush()
                        del mm
                    from rasterio.windows import Window

                    cls_tif.write(strip_cls, 1, window=Window(0, r0, w, r1 - r0))
                    conf_tif.write(strip_conf, 1, window=Window(0, r0, w, r1 - r0))
        bar.close()
        seconds = time.perf_counter() - t0
        classes = np.load(tmp / "classes.npy", mmap_mode="r")
        palette_png(np.asarray(classes), c, tmp / "classes.png")
        counts = np.bincount(np.asarray(classes).reshape(-1), minlength=c + 1)[1:]
        del classes
        summary = {"cube": str(cube.path), "shape": [h, w, b], "pixels": h * w, "seconds": seconds,
                   "pixels_per_s": h * w / seconds, "tile": tile, "batch_size": batch_size,
                   "compiled": isinstance(net, FixedBatch), "stem_per_tile": by_stem,
                   "georeferenced": cube.georef.present, "class_names": list(run.class_names),
                   "pixels_per_class": {n: int(k) for n, k in zip(run.class_names, counts, strict=True)}}
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
