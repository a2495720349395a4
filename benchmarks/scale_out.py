"""The same comparison and the same scene map, in one process and on a local Ray cluster: wall time and equality.

    python benchmarks/scale_out.py --data-dir ../shared/data --workers 2 --out results/scale_out.md

Comparison: `run_comparison` on Indian Pines under the paper's protocol for `--models` x `--seeds` with the epochs
of `--epochs` (a speed measurement: the epochs are cut so that it runs in minutes; no accuracy is reported), first
`--executor local` (one after the other, one thread), then `--executor ray` with `--workers` CPUs, each into its own
fresh work dir. Predict: `predict_cube` of a model trained for 1 epoch on Indian Pines over a synthetic cube of
`--size`² pixels with Indian Pines' 200 bands, eager, 64² tiles, locally and on `--workers` Ray actors. Both report
wall seconds (Ray's start included), the speed-up, and whether the records' metrics and the maps are identical.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

METRICS = ("oa", "aa", "kappa", "per_class", "confusion", "trainable_params", "flops", "n_train", "n_test")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--models", default="rf,svm,ssftt")
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--epochs", default="ssftt=5")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path("results/scale_out.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    import hsiclip
    from hsiclip.data.rasters import ArraySource
    from hsiclip.efficiency import machine
    from hsiclip.experiments.compare import run_comparison
    from hsiclip.predict import predict_cube
    from hsiclip.records import code_version

    scene = hsiclip.load_scene("indian_pines", data_dir=args.data_dir)
    names = args.models.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    epochs = {k: int(v) for k, v in (item.split("=") for item in args.epochs.split(",") if item)}
    load0 = os.getloadavg()
    walls, recs = {}, {}
    with tempfile.TemporaryDirectory(prefix="hsiclip-scale-") as tmp:
        for ex in ("local", "ray"):
            t0 = time.perf_counter()
            recs[ex] = run_comparison(scene, names, seeds, epochs=epochs, work_dir=Path(tmp) / ex, progress=False,
                                      log=lambda m: None, executor=ex, workers=args.workers)
            walls[ex] = time.perf_counter() - t0
            print(ex, f"{walls[ex]:.1f} s", flush=True)
        same = all({k: a[k] for k in METRICS} == {k: b[k] for k in METRICS}
                   for a, b in zip(recs["local"], recs["ray"], strict=True))
        run = hsiclip.train(scene, "ours", epochs=1, progress=False)
        rng = np.random.default_rng(0)
        cube = (1000 + 300 * rng.random((args.size, args.size, 8), dtype=np.float32)
                @ rng.normal(size=(8, 200)).astype(np.float32)).astype(np.int16)
        pwall = {}
        for ex in ("local", "ray"):
            t0 = time.perf_counter()
            predict_cube(run, ArraySource(cube), Path(tmp) / f"pred_{ex}", tile=64, progress=False, compile="no",
                         executor=ex, workers=args.workers)
            pwall[ex] = time.perf_counter() - t0
            print("predict", ex, f"{pwall[ex]:.1f} s", flush=True)
        same_map = all(np.array_equal(np.load(Path(tmp) / "pred_local" / n), np.load(Path(tmp) / "pred_ray" / n))
                       for n in ("classes.npy", "confidence.npy"))
    cmd = ("python benchmarks/scale_out.py" + (" --data-dir ../shared/data" if args.data_dir else "")
           + f" --models {args.models} --seeds {args.seeds} --epochs {args.epochs} --workers {args.workers}"
           + f" --size {args.size}")
    lines = ["# Scale-out: one process against a local Ray cluster", "", f"Command: `{cmd}`", "",
             f"Machine: {machine().rsplit(',', 1)[0]}; Python {platform.python_version()}, torch {torch.__version__}; "
             f"code {code_version()}. Load average before: {', '.join(f'{x:.2f}' for x in load0)}. Data: Indian "
             f"Pines, the paper's protocol, seeds {args.seeds}; systems {args.models}, epochs {args.epochs} (cut "
             "for a speed measurement: no accuracy is reported here). Predict: the paper's model (1 epoch) over a "
             f"synthetic {args.size}² cube of 200 bands, 64² tiles, eager. Wall seconds include starting Ray.", "",
             f"| work | pairs / pixels | one process (s) | Ray, {args.workers} workers (s) | speed-up | identical |",
             "| --- | --- | --- | --- | --- | --- |",
             f"| compare | {len(recs['local'])} pairs | {walls['local']:.1f} | {walls['ray']:.1f} "
             f"| {walls['local'] / walls['ray']:.2f}x | {'yes' if same else 'NO'} (metrics of every record) |",
             f"| predict | {args.size ** 2:,} px | {pwall['local']:.1f} | {pwall['ray']:.1f} "
             f"| {pwall['local'] / pwall['ray']:.2f}x | {'yes' if same_map else 'NO'} (classes and confidence) |"]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
