"""Scale-out on Ray: a comparison and a scene map in one process and on a local Ray cluster, Ray's overhead, and a
killed run's resume.

    python benchmarks/scale_out.py --data-dir ../shared/data --workers 2 --out results/scale_out.md

- **Comparison**: `run_comparison` on Indian Pines under the paper's protocol for `--models` x `--seeds` with the
  epochs of `--epochs` (cut so that it runs in minutes: a speed measurement, no accuracy is reported), first with
  `executor="local"` (one after the other, one thread), then on Ray with `--workers` CPUs, each into a fresh work
  dir; wall seconds (Ray's start included), and whether every record's metrics are identical.
- **Ray's overhead**: the seconds to start a local cluster, and the round trip of an empty task (mean of 200).
- **Resume**: SSFTT for `--resume-epochs` epochs in a child process that is killed (SIGKILL) at the end of epoch
  `--kill-after`; a second run resumes from the last checkpoint (every 5 epochs, as `compare` writes them). Reported:
  the epochs recomputed after the kill, and whether the resumed run's metrics equal an uninterrupted run's.
- **Predict**: the paper's model (trained 1 epoch) over a synthetic `--size`² cube with Indian Pines' 200 bands,
  written to a .npy file and read by the actors tile by tile as `hsiclip predict --executor ray` does, compiled as
  it does at that size, 256² tiles, on Ray with 1 and with `--workers` actors: pixels/s (the actors' start and
  compile included); each worker's resident memory after every tile (after its first, the smallest and the largest:
  flat memory when they agree) and its peak (the transient of one tile's work).
- `--parts` runs only the named parts and keeps the others' figures from the .json beside `--out`; each part
  records its code version, date and load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

METRICS = ("oa", "aa", "kappa", "per_class", "confusion", "trainable_params", "flops", "n_train", "n_test")
CHILD = """
import sys, torch
torch.set_num_threads(1)
import hsiclip
from hsiclip import engine
save = engine.Checkpoint.save
def announce(self, epoch, *a, **k):
    save(self, epoch, *a, **k)
    print(epoch, flush=True)
engine.Checkpoint.save = announce
scene = hsiclip.load_scene("indian_pines", data_dir=sys.argv[1] or None)
hsiclip.train(scene, "ssftt", epochs=int(sys.argv[2]), progress=False, checkpoint=sys.argv[3])
"""


def comparison(scene, args: argparse.Namespace, tmp: Path) -> dict:
    from hsiclip.experiments.compare import run_comparison

    names, seeds = args.models.split(","), [int(s) for s in args.seeds.split(",")]
    epochs = {k: int(v) for k, v in (item.split("=") for item in args.epochs.split(",") if item)}
    out = {}
    for ex in ("local", "ray"):
        t0 = time.perf_counter()
        out[ex] = run_comparison(scene, names, seeds, epochs=epochs, work_dir=tmp / ex, progress=False,
                                 log=lambda m: None, executor=ex, workers=args.workers)
        out[ex + "_s"] = time.perf_counter() - t0
        print("compare", ex, f"{out[ex + '_s']:.1f} s", flush=True)
    out["same"] = all({k: a[k] for k in METRICS} == {k: b[k] for k in METRICS}
                      for a, b in zip(out["local"], out["ray"], strict=True))
    return out


def overhead(args: argparse.Namespace) -> dict:
    from hsiclip.executor import ray_session

    t0 = time.perf_counter()
    with ray_session(workers=args.workers) as ray:
        start = time.perf_counter() - t0
        noop = ray.remote(num_cpus=1)(lambda: None)
        ray.get([noop.remote() for _ in range(20)])  # workers up
        t = time.perf_counter()
        ray.get([noop.remote() for _ in range(200)])
        per_task = (time.perf_counter() - t) / 200
    return {"start_s": start, "task_ms": per_task * 1e3}


def resume(scene, args: argparse.Namespace, tmp: Path) -> dict:
    import hsiclip

    ckpt = tmp / "ssftt.ckpt.pt"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(args.data_dir or ""), str(args.resume_epochs),
                              str(ckpt)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for line in child.stdout:
        if int(line) == args.kill_after:
            child.send_signal(signal.SIGKILL)
            break
    child.wait()
    saved = torch.load(ckpt, weights_only=False)["epoch"]
    resumed = hsiclip.train(scene, "ssftt", epochs=args.resume_epochs, progress=False, checkpoint=ckpt)
    whole = hsiclip.train(scene, "ssftt", epochs=args.resume_epochs, progress=False)
    same = all(resumed.record[k] == whole.record[k] for k in METRICS) and [h["loss"] for h in resumed.history] == [
        h["loss"] for h in whole.history]
    print("resume", saved, same, flush=True)
    return {"epochs": args.resume_epochs, "killed_after": args.kill_after, "saved": saved,
            "recomputed": args.kill_after - saved, "same": same}


def _rss_mb() -> tuple[float, float]:
    """This process's peak and current resident memory (MB)."""
    with open("/proc/self/statm") as f:
        current = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, current


def _classifier_with_memory(run, cube):
    """A factory for `ordered_map`: the tile classifier (reading its tiles from `cube`), returning the actor's peak
    and current RSS (MB) and its pid with each result."""
    from hsiclip.predict import TileClassifier

    def build():
        classify = TileClassifier(run, cube, 64, "cpu", compile=True)
        return lambda item: (*classify(item), *_rss_mb(), os.getpid())

    return build


def predict(scene, args: argparse.Namespace, tmp: Path) -> dict:
    import hsiclip
    from hsiclip.data.rasters import CubeSource
    from hsiclip.executor import ordered_map
    from hsiclip.predict import tiles

    run = hsiclip.train(scene, "ours", epochs=1, progress=False)
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(8, 200)).astype(np.float32)
    path = tmp / "cube.npy"
    cube = np.lib.format.open_memmap(path, mode="w+", dtype=np.int16, shape=(args.size, args.size, 200))
    for r0 in range(0, args.size, 64):
        cube[r0 : r0 + 64] = (1000 + 300 * rng.random((min(64, args.size - r0), args.size, 8), dtype=np.float32)
                              @ basis).astype(np.int16)
    cube.flush()
    del cube
    source = CubeSource(path)
    out: dict = {"tiles": 0}
    maps = {}
    for n in (1, args.workers):
        grid = list(tiles(source.shape, 256, run.window))
        t0 = time.perf_counter()
        peaks, after, pixels, maps[n] = {}, {}, 0, []
        for pred, _, peak, current, pid in ordered_map(_classifier_with_memory(run, source), iter(grid), workers=n):
            peaks[pid] = peak
            after.setdefault(pid, []).append(current)
            pixels += pred.size
            maps[n].append(pred)
        seconds = time.perf_counter() - t0
        out["tiles"] = len(grid)
        out[str(n)] = {"px_s": pixels / seconds, "seconds": seconds, "peak_mb": list(peaks.values()),
                       "after_tile_mb": list(after.values())}
        print("predict", n, f"{pixels / seconds:.0f} px/s", flush=True)
    out["same"] = all(np.array_equal(a, b) for a, b in zip(maps[1], maps[args.workers], strict=True))
    return out


PARTS = ("comparison", "overhead", "resume", "predict")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--models", default="forward_forward,cnn2d,ssftt,ours,vision_only,mcls_clip")
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--epochs", default="forward_forward=10,cnn2d=10,ssftt=5,ours=5,vision_only=5,mcls_clip=5")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--resume-epochs", type=int, default=12)
    ap.add_argument("--kill-after", type=int, default=7)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--parts", default=",".join(PARTS),
                    help="the parts to run; the others are kept from the .json beside --out")
    ap.add_argument("--out", type=Path, default=Path("results/scale_out.md"))
    args = ap.parse_args()
    parts = args.parts.split(",")
    if unknown := set(parts) - set(PARTS):
        ap.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    torch.set_num_threads(1)
    import hsiclip
    from hsiclip.efficiency import machine
    from hsiclip.records import code_version

    store = args.out.with_suffix(".json")
    results = json.loads(store.read_text()) if store.exists() else {}
    scene = hsiclip.load_scene("indian_pines", data_dir=args.data_dir)
    with tempfile.TemporaryDirectory(prefix="hsiclip-scale-") as tmp:
        for part in parts:
            load = os.getloadavg()
            if part == "comparison":
                r = comparison(scene, args, Path(tmp))
                r = {"pairs": len(r["local"]), "local_s": r["local_s"], "ray_s": r["ray_s"], "same": r["same"],
                     "models": args.models, "seeds": args.seeds, "epochs": args.epochs}
            elif part == "overhead":
                r = overhead(args)
            elif part == "resume":
                r = resume(scene, args, Path(tmp))
            else:
                r = predict(scene, args, Path(tmp))
                r["size"] = args.size
            r.update(workers=args.workers, code=code_version(), load=[round(x, 2) for x in load],
                     date=time.strftime("%Y-%m-%d"))
            results[part] = r
            store.write_text(json.dumps(results, indent=1) + "\n")
    if missing := [p for p in PARTS if p not in results]:
        print(f"wrote {store}; run --parts {','.join(missing)} for the markdown")
        return
    cmp, ovh, res, pre = (results[p] for p in PARTS)
    cmd = ("python benchmarks/scale_out.py" + (" --data-dir ../shared/data" if args.data_dir else "")
           + f" --workers {args.workers}" + ("" if args.out == Path("results/scale_out.md") else f" --out {args.out}"))

    def run_on(r: dict) -> str:
        return f"Code {r['code']}, {r['date']}; load average before: {', '.join(f'{x:.2f}' for x in r['load'])}."

    def mb(values: list[float]) -> str:
        return ", ".join(f"{v:.0f}" for v in values)

    w = pre["workers"]
    lines = [
        "# Scale-out: one process against a local Ray cluster", "", f"Command: `{cmd}` (a part alone: add "
        "`--parts NAME`; the others are kept from `scale_out.json`)", "",
        f"Machine: {machine().rsplit(',', 1)[0]}; Python {platform.python_version()}, torch {torch.__version__}, "
        f"Ray {__import__('ray').__version__}. Data: Indian Pines, the paper's protocol. See the script's docstring "
        "for what each figure times.", "",
        f"## Comparison: {cmp['models']} x seeds {cmp['seeds']}", "",
        f"Epochs {cmp['epochs']} (cut for a speed measurement: no accuracy is reported here). {run_on(cmp)}", "",
        f"| pairs | one process (s) | Ray, {cmp['workers']} workers (s) | speed-up | records identical |",
        "| --- | --- | --- | --- | --- |",
        f"| {cmp['pairs']} | {cmp['local_s']:.1f} | {cmp['ray_s']:.1f} | {cmp['local_s'] / cmp['ray_s']:.2f}x "
        f"| {'yes' if cmp['same'] else 'NO'} (metrics of every record) |", "",
        f"Ray's overhead: {ovh['start_s']:.1f} s to start a local cluster of {ovh['workers']} CPUs; an empty task's "
        f"round trip {ovh['task_ms']:.2f} ms (mean of 200, workers running). {run_on(ovh)}", "",
        "## Resume after a kill", "",
        f"SSFTT, {res.get('epochs', args.resume_epochs)} epochs, checkpoints every 5, the process killed (SIGKILL) "
        f"after epoch {res['killed_after']}: the run resumed from epoch {res['saved']}, recomputing "
        f"{res['recomputed']} epochs; its losses and metrics equal an uninterrupted run's: "
        f"{'yes' if res['same'] else 'NO'}. {run_on(res)}", "",
        f"## Predict: a synthetic {pre['size']}² cube in a .npy file, 200 bands, the paper's model", "",
        f"{pre['tiles']} tiles of 256² (each read with its halo by the actor itself: only tile coordinates travel). "
        f"{run_on(pre)}", "",
        "| workers | seconds | pixels/s | RSS per worker after its first tile / smallest / largest after a tile "
        "(MB) | peak RSS per worker (MB) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for n in (1, w):
        p = pre[str(n)]
        after = "; ".join(f"{a[0]:.0f} / {min(a):.0f} / {max(a):.0f}" for a in p["after_tile_mb"])
        lines.append(f"| {n} | {p['seconds']:.1f} | {p['px_s']:,.0f} | {after} | {mb(p['peak_mb'])} |")
    lines += ["", f"Speed-up {pre[str(w)]['px_s'] / pre['1']['px_s']:.2f}x; the class maps of 1 and {w} workers "
              f"identical: {'yes' if pre['same'] else 'NO'}. Seconds include starting the actors and compiling the "
              "model in each (TorchInductor)."]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
