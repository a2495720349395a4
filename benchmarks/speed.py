"""Training and inference speed of the paper's model and the flagship against this CPU's FLOP bound, before and after.

    python benchmarks/speed.py --before 58301e2 --out results/speed.md

Every cell runs in a fresh process (`--worker`), so that its code version and thread count are its own:
- **before**: the code of commit `--before` (checked out into a temporary git worktree and put first on
  PYTHONPATH), with PyTorch's default thread count, which is what that code ran with (it set none);
- **after**: this checkout's code with one intra-op thread, the command line's default since `hsiclip --threads`.
Each worker measures, on Indian Pines under the paper's protocol (seed 0):
- the fp32 GEMM rate with its own threads (2048 x 2048, best of 2 s): the bound;
- training seconds per epoch (median of epochs 2..E of a real `hsiclip.train` run of E epochs);
- test-set inference pixels/s (the same run's evaluation of its 9,225 test pixels: the eager path every record uses);
- `predict` pixels/s on a 512-wide strip of a synthetic 512² scene (200 bands, the trained model), through the
  path `hsiclip predict` takes at 512² (TorchInductor, heads-last attention; `--compile auto` compiles from 250,000
  pixels): steady-state over the tiles after the first, the compile (plus the first tile) reported apart.
With `--busy`, the driver keeps one core busy with a spinning process while a training-only worker runs: the ratio
of its seconds per epoch to the idle worker's is the slowdown under load. `--cli` also times the whole README
command `hsiclip train --scene indian_pines --seed 0` (50 epochs, test inference and the map) idle and busy.

FLOPs come from this checkout's counter (attention included, `efficiency.flop_counter`), identical for before and
after (the networks are the same): a training step's forward and backward on a batch of the recipe's size, in
training mode (token masking included), scaled to the training pixels of an epoch; the forward per test pixel; and,
for predict, the FLOPs executed per pixel when the stem runs once per tile, plus the PCA projection.
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
from statistics import median

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from predict_scaling import executed_flops, matmul_rate

RECIPES = {"paper": "ours", "flagship": "flagship"}


def _flops(run, batch: int) -> dict[str, float]:
    """FLOPs of one training sample (forward + backward, training mode), one test pixel and one predicted pixel."""
    from hsiclip.efficiency import flop_counter, flops_per_sample

    model, w, c = run.model, run.window, run.preprocess.channels
    x = torch.randn(batch, w, w, c)
    y = torch.randint(0, len(run.class_names), (batch,))
    model.train()
    torch.manual_seed(0)
    with flop_counter() as fc:
        out = model(x)
        loss = sum(torch.nn.functional.cross_entropy(o, y) for o in out) if out.dim() == 3 else \
            torch.nn.functional.cross_entropy(out, y)
        loss.backward()
    model.zero_grad(set_to_none=True)
    model.eval()
    pca = 2 * run.preprocess.bands * c  # the per-pixel projection, outside the network
    return {"train_per_sample": fc.get_total_flops() / batch,
            "test_per_px": flops_per_sample(model, torch.zeros(w, w, c)),
            "predict_per_px": executed_flops(model, w, c) + pca}


def worker(args: argparse.Namespace) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    import hsiclip
    from hsiclip.data.rasters import ArraySource
    from hsiclip.predict import classify_tiles

    rate = matmul_rate(seconds=2.0)
    scene = hsiclip.load_scene("indian_pines")
    # the flagship's 5 warm-up epochs: the code before could not shorten a run below them
    epochs = args.epochs + (5 if args.model == "flagship" else 0)
    run = hsiclip.train(scene, RECIPES[args.model], seed=0, epochs=epochs, progress=False)
    rec = run.record
    out = {"threads": torch.get_num_threads(), "gemm_flops": rate, "load": os.getloadavg(),
           "epoch_s": median(h["seconds"] for h in run.history[1:]), "n_train": rec["n_train"],
           "test_px_s": rec["n_test"] / rec["infer_s"], "batch": run.recipe.train.batch_size}
    if args.flops:
        out["flops"] = _flops(run, out["batch"])
    if not args.train_only:
        rng = np.random.default_rng(0)
        basis = rng.normal(size=(8, scene.cube.shape[-1])).astype(np.float32)
        cube = (1000 + 300 * rng.random((args.rows, 512, 8), dtype=np.float32) @ basis).astype(np.int16)
        t0 = time.perf_counter()
        first, pixels = None, 0
        for (r0, r1, c0, c1), _, _ in classify_tiles(run, ArraySource(cube), tile=args.tile, batch_size=64,
                                                    compile=True):
            if first is None:
                first = time.perf_counter()
            else:
                pixels += (r1 - r0) * (c1 - c0)
                if time.perf_counter() - first > args.predict_seconds:
                    break
        out.update(predict_px_s=pixels / (time.perf_counter() - first), compile_s=first - t0, predict_px=pixels)
    out["load_end"] = os.getloadavg()
    return out


def spawn(args: argparse.Namespace, model: str, side: str, busy: bool, pythonpath: str | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--model", model, "--epochs", str(args.epochs), "--rows",
           str(args.rows), "--tile", str(args.tile), "--predict-seconds", str(args.predict_seconds)]
    if side == "after":
        cmd += ["--threads", "1"]
    if busy:
        cmd.append("--train-only")
    if side == "after" and not busy:
        cmd.append("--flops")
    env = dict(os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {}))
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        res = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    out = json.loads(res.stdout.strip().splitlines()[-1])
    print(model, side, "busy" if busy else "idle", json.dumps(out), flush=True)
    return out


def cli_wall(side: str, busy: bool, pythonpath: str | None, work: Path) -> float:
    """Wall seconds of the README's first command (50 epochs + test inference + map), in a fresh process."""
    env = dict(os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {}))
    # the previous code had no --threads option; `python -m hsiclip` picks the PYTHONPATH code, not the installed one
    cmd = [sys.executable, "-m", "hsiclip", "train", "--scene", "indian_pines", "--seed", "0", "--quiet",
           "--overwrite", "--out", str(work / f"cli_{side}_{busy}")]
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    print("cli", side, "busy" if busy else "idle", f"{wall:.1f} s", flush=True)
    return wall


def table(args: argparse.Namespace, res: dict, cli: dict, commit_before: str, after: str | None, load0: tuple
          ) -> str:
    from hsiclip.efficiency import machine
    from hsiclip.records import code_version

    lines = ["# Training and inference speed against the FLOP bound", "",
             f"Command: `python benchmarks/speed.py --before {args.before}"
             + (f" --after {args.after}" if args.after else "")
             + (f" --epochs {args.epochs}" if args.epochs != 4 else "") + (" --cli" if args.cli else "")
             + (f" --out {args.out}" if args.out != Path("results/speed.md") else "") + "`", "",
             f"Machine: {machine().rsplit(',', 1)[0]}; Python {platform.python_version()}, torch {torch.__version__}. "
             f"Load average (1, 5, 15 min) before the run: {', '.join(f'{x:.2f}' for x in load0)}. "
             f"Code: before = `{commit_before}` (PyTorch's default threads), after = `{after or code_version()}` (one "
             "thread: `hsiclip --threads`' default). Data: Indian Pines, the paper's protocol, seed 0 "
             f"({args.epochs} training epochs per cell, the flagship {args.epochs} + its 5 warm-up epochs: the "
             f"weights do not change the cost); predict: a 512 x "
             f"{args.rows} strip of a synthetic 512² 200-band scene in {args.tile}² tiles, batch 64, compiled as "
             "`hsiclip predict` does at 512², timed over the tiles after the first, for up to "
             f"{args.predict_seconds:g} s. Bound: the FLOPs (this checkout's counter, attention included) at the "
             "fp32 GEMM rate each cell measured with its own threads (2048², best of 2 s). See the script's "
             "docstring for what each column times.", ""]
    lines += ["| model | code | threads | GEMM GFLOP/s | train s/epoch | train GFLOP/s | share of bound "
              "| test inference px/s | GFLOP/s | share | predict px/s | GFLOP/s | share | compile + first tile (s) "
              "| train s/epoch, one core busy | slowdown |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for model in RECIPES:
        f = res[(model, "after", False)]["flops"]
        for side in ("before", "after"):
            r, b = res[(model, side, False)], res[(model, side, True)]
            g = r["gemm_flops"]
            train = f["train_per_sample"] * r["n_train"] / r["epoch_s"]
            test = f["test_per_px"] * r["test_px_s"]
            pred = f["predict_per_px"] * r["predict_px_s"]
            lines.append(f"| {model} | {side} | {r['threads']} | {g / 1e9:.1f} | {r['epoch_s']:.2f} "
                         f"| {train / 1e9:.1f} | {train / g:.0%} | {r['test_px_s']:,.0f} | {test / 1e9:.1f} "
                         f"| {test / g:.0%} | {r['predict_px_s']:,.0f} ({r['predict_px']:,} px) | {pred / 1e9:.1f} "
                         f"| {pred / g:.0%} "
                         f"| {r['compile_s']:.1f} | {b['epoch_s']:.2f} | {b['epoch_s'] / r['epoch_s']:.2f}x |")
    p = res[("paper", "after", False)]["flops"]
    fl = res[("flagship", "after", False)]["flops"]
    lines += ["", f"FLOPs per training sample (forward + backward): paper {p['train_per_sample'] / 1e6:.2f} M, "
              f"flagship {fl['train_per_sample'] / 1e6:.2f} M; per test pixel {p['test_per_px'] / 1e6:.2f} M and "
              f"{fl['test_per_px'] / 1e6:.2f} M; per predicted pixel (stem once per tile, + PCA) "
              f"{p['predict_per_px'] / 1e6:.2f} M and {fl['predict_per_px'] / 1e6:.2f} M."]
    if cli:
        lines += ["", "The README's first command, `hsiclip train --scene indian_pines --seed 0` (50 epochs, test "
                  "inference, map; process start included), wall seconds:", "",
                  "| code | idle | one core busy | slowdown |", "| --- | --- | --- | --- |"]
        for side in ("before", "after"):
            lines.append(f"| {side} | {cli[(side, False)]:.1f} | {cli[(side, True)]:.1f} "
                         f"| {cli[(side, True)] / cli[(side, False)]:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="58301e2", help="the commit whose code is measured as 'before'")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--rows", type=int, default=128, help="rows of the 512-wide predict strip")
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--predict-seconds", type=float, default=60.0,
                    help="stop predicting after the first tile that ends past this many seconds")
    ap.add_argument("--after", default=None, help="the commit measured as 'after' (default: this checkout)")
    ap.add_argument("--cli", action="store_true", help="also time the README's first command, idle and busy")
    ap.add_argument("--out", type=Path, default=Path("results/speed.md"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", choices=list(RECIPES), help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--train-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--flops", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    load0 = os.getloadavg()
    root = Path(__file__).resolve().parent.parent
    commit = subprocess.run(["git", "rev-parse", "--short", args.before], cwd=root, check=True, capture_output=True,
                            text=True).stdout.strip()
    after = None if args.after is None else subprocess.run(["git", "rev-parse", "--short", args.after], cwd=root,
                                                           check=True, capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="hsiclip-speed-") as tmp:
        trees = {"before": Path(tmp) / "before", "after": Path(tmp) / "after"}
        for side, rev in (("before", commit), ("after", after)):
            if rev is not None:
                subprocess.run(["git", "worktree", "add", "--detach", str(trees[side]), rev], cwd=root, check=True,
                               capture_output=True)
        try:
            paths = {"before": str(trees["before"] / "src"), "after": after and str(trees["after"] / "src")}
            res = {(m, s, busy): spawn(args, m, s, busy, paths[s])
                   for m in RECIPES for s in ("before", "after") for busy in (False, True)}
            cli = {(s, busy): cli_wall(s, busy, paths[s] or str(root / "src"), Path(tmp))
                   for s in ("before", "after") for busy in (False, True)} if args.cli else {}
        finally:
            for tree in trees.values():
                if tree.exists():
                    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=root, check=False)
    args.out.write_text(table(args, res, cli, commit, after, load0))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
