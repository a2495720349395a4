"""Prediction throughput and peak memory of `hsiclip predict` on synthetic scenes of growing size, against the FLOP
bound of the same model on this CPU (FLOPs per pixel / a plain matrix-multiply rate measured in the same run).

    python benchmarks/predict_scaling.py --sizes 512 1024 2048 4096 --bands 200 --out results/predict_scaling.md

The bound is set twice: by the network's FLOPs per window (PyTorch's counter, as in every table of this project),
and by the FLOPs `hsiclip predict` actually executes per pixel, which are fewer because the stem runs once per tile
and neighbouring windows share its outputs (`MaskedViT.stem_map`). The second is the stricter test.

Each size is a synthetic int16 cube (H = W = size, 200 bands, smooth random spectra) written to `--scratch` as .npy
row block by row block; `hsiclip predict` classifies it in a fresh process under a fresh parent (so that its peak
RSS is its own) with a run trained for one epoch on a small synthetic 200-band scene (the paper's model and recipe; the
weights do not change the cost). The matrix-multiply rate is torch's fp32 GEMM on 2048 x 2048 matrices with the same
threads, measured before every size so that the two numbers share the machine's state.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def matmul_rate(n: int = 2048, seconds: float = 3.0) -> float:
    """fp32 GEMM FLOP/s (2 n^3 per product), best of a few products over about `seconds`."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best, start = 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


def synthetic_cube(path: Path, size: int, bands: int, seed: int = 0, rows_per_block: int = 64) -> None:
    """An int16 (size, size, bands) .npy written a block of rows at a time (never whole in memory)."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(8, bands)).astype(np.float32)
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.int16, shape=(size, size, bands))
    for r0 in range(0, size, rows_per_block):
        r1 = min(size, r0 + rows_per_block)
        weights = rng.random((r1 - r0, size, 8), dtype=np.float32)
        mm[r0:r1] = (1000 + 300 * weights @ basis).astype(np.int16)
        mm.flush()
    del mm


def training_run(work: Path, bands: int, recipe: str) -> Path:
    """A run of `recipe` on a small synthetic scene with `bands` bands (one epoch, or one past the recipe's warm-up:
    the weights do not matter for speed)."""
    rng = np.random.default_rng(0)
    labels = np.zeros((64, 64), dtype=np.int64)
    labels[4:60, 4:60] = 1 + (np.arange(56)[None, :] * 3 // 56)
    cube = (1000 + 300 * rng.random((64, 64, bands)) + 200 * labels[..., None]).astype(np.int16)
    np.save(work / "train_cube.npy", cube)
    np.save(work / "train_labels.npy", labels)
    (work / "classes.toml").write_text("".join(f'[[classes]]\nlabel = {i}\nname = "class {i}"\n'
                                               f'descriptive = "Synthetic class number {i}."\n' for i in (1, 2, 3)))
    run = work / "run"
    from hsiclip.config import load_config

    epochs = load_config(recipe).train.warmup_epochs + 1  # the fewest a recipe with warm-up accepts
    subprocess.run(["hsiclip", "train", "--cube", str(work / "train_cube.npy"), "--labels",
                    str(work / "train_labels.npy"), "--classes", str(work / "classes.toml"), "--epochs", str(epochs),
                    "--out", str(run), "--quiet", "--no-map", "--overwrite", "--config", recipe], check=True,
                   stdout=subprocess.DEVNULL)
    return run


def executed_flops(model: torch.nn.Module, window: int, channels: int, tile: int = 64) -> int:
    """FLOPs per pixel of the stem-per-tile path: the stem over a tile divided by the windows it serves, plus the
    rest of the network on one window's tokens (PyTorch's counter)."""
    from hsiclip.efficiency import flop_counter

    model.eval()
    with torch.no_grad(), flop_counter() as stem:
        smap = model.stem_map(torch.zeros(tile + window - 1, tile + window - 1, channels))  # every member's
    with torch.no_grad(), flop_counter() as rest:
        model.classify_stem_tokens(torch.zeros(1, len(model.stem_offsets()), smap.shape[-1]))
    return round(stem.get_total_flops() / tile**2) + rest.get_total_flops()


def predict_peak(run: Path, cube: Path, out: Path, tile: int, batch: int, compile: str = "auto"
                 ) -> tuple[float, float, dict]:
    """Wall seconds, peak RSS (MB) of a fresh `hsiclip predict` process, and its summary.

    The process is started by a small fresh parent (`map_memory.run`): a child's ru_maxrss also counts the peak of
    the memory it was forked from, and this script's own peak includes writing the synthetic cube through a memory
    map (1.7 GB at 2048²), which the earlier version of this table wrongly showed as growth of `hsiclip predict`.
    """
    from map_memory import run as measured

    wall, peak = measured(["hsiclip", "predict", str(run), str(cube), "--out", str(out), "--tile", str(tile),
                           "--batch-size", str(batch), "--compile", compile, "--overwrite", "--quiet"])
    return wall, peak, json.loads((out / "summary.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    ap.add_argument("--bands", type=int, default=200)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--recipe", default="paper_indian_pines", help="the model's recipe (built-in name or file)")
    ap.add_argument("--compile", choices=["auto", "yes", "no"], default="auto", help="passed to `hsiclip predict`")
    ap.add_argument("--scratch", type=Path, default=None, help="where the synthetic cubes go (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=Path("results/predict_scaling.md"))
    args = ap.parse_args()
    from hsiclip.efficiency import flops_per_sample
    from hsiclip.run import load_run

    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="hsiclip-scaling-"))
    scratch.mkdir(parents=True, exist_ok=True)
    run = training_run(scratch, args.bands, args.recipe)
    trained = load_run(run)
    w = trained.cfg.model.window
    flops = flops_per_sample(trained.model, torch.zeros(w, w, trained.cfg.data.pca_components))
    pca_flops = 2 * args.bands * trained.cfg.data.pca_components  # the per-pixel projection, outside the model
    executed = executed_flops(trained.model, w, trained.cfg.data.pca_components)
    rows = []
    for size in args.sizes:
        cube = scratch / f"cube_{size}.npy"
        t = time.perf_counter()
        synthetic_cube(cube, size, args.bands)
        gen = time.perf_counter() - t
        rate = matmul_rate()
        wall, peak, summary = predict_peak(run, cube, scratch / f"pred_{size}", args.tile, args.batch_size,
                                           args.compile)
        bound, bound_exec = rate / (flops + pca_flops), rate / (executed + pca_flops)
        rows.append({"size": size, "pixels": size * size, "cube_gb": cube.stat().st_size / 1e9, "gen_s": gen,
                     "seconds": summary["seconds"], "wall_s": wall, "px_s": summary["pixels_per_s"],
                     "peak_mb": peak, "matmul_gflops": rate / 1e9, "bound_px_s": bound,
                     "of_bound": summary["pixels_per_s"] / bound, "bound_exec_px_s": bound_exec,
                     "of_bound_exec": summary["pixels_per_s"] / bound_exec, "compiled": summary["compiled"]})
        print(json.dumps(rows[-1]), flush=True)
        cube.unlink()
    base = rows[0]
    lines = [
        "# Prediction throughput and memory against scene size", "",
        "Command: `" + (f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} " if "OMP_NUM_THREADS" in os.environ else "")
        + f"python benchmarks/predict_scaling.py --sizes {' '.join(map(str, args.sizes))} --bands "
        f"{args.bands} --tile {args.tile} --batch-size {args.batch_size}"
        + ("" if args.recipe == "paper_indian_pines" else f" --recipe {args.recipe}")
        + ("" if args.compile == "auto" else f" --compile {args.compile}")
        + ("" if args.out == Path("results/predict_scaling.md") else f" --out {args.out}") + "`", "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, Python {sys.version.split()[0]}. "
        f"Data: synthetic int16 cubes, {args.bands} bands (seed 0), as .npy files read tile by tile. Model: recipe "
        f"`{args.recipe}` ({trained.cfg.model.window} x {trained.cfg.model.window} windows, PCA {args.bands} -> "
        f"{trained.cfg.data.pca_components}), {flops / 1e6:.2f} MFLOPs per window for the network (PyTorch's "
        f"counter), of which `hsiclip predict` executes {executed / 1e6:.2f} M per pixel (the stem runs once per "
        f"tile), + {pca_flops / 1e3:.0f} kFLOPs for the PCA projection. FLOP bound: those FLOPs at the fp32 "
        "matrix-multiply rate measured just before each size (2048 x 2048 GEMM, best of 3 s): by the FLOPs executed "
        "(the stricter bound) and by the FLOPs per window. `compiled`: whether the model ran through TorchInductor "
        "(`--compile auto` does for scenes of 250,000 pixels or more; its 10-20 s compile is inside the seconds). "
        "Peak memory: the `hsiclip predict` process's maximum resident set (it includes PyTorch itself). Seconds: "
        "prediction proper (compiling, reading, PCA, network, writing .npy + GeoTIFF), excluding process start and "
        "the PNG.", "",
        "| scene | pixels | cube (GB) | compiled | seconds | pixels/s | peak memory (MB) | memory vs first "
        "| GEMM GFLOP/s | bound, FLOPs executed (px/s) | share of it | bound, FLOPs per window (px/s) | share of it |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['size']}² | {r['pixels']:,} | {r['cube_gb']:.2f} | {'yes' if r['compiled'] else 'no'} "
                     f"| {r['seconds']:.1f} | {r['px_s']:,.0f} | {r['peak_mb']:.0f} "
                     f"| {r['peak_mb'] / base['peak_mb']:.2f}x | {r['matmul_gflops']:.1f} "
                     f"| {r['bound_exec_px_s']:,.0f} | {r['of_bound_exec']:.0%} | {r['bound_px_s']:,.0f} "
                     f"| {r['of_bound']:.0%} |")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
