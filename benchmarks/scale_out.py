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
  compiled as `hsiclip predict` does at that size, 256² tiles, on Ray with 1 and with `--workers` actors: pixels/s
  (the actors' start and compile included) and each worker's peak resident memory after its first tile and at the
  end (flat memory: the two agree).
"""

from __future__ import annotations

import argparse
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
    return {"killed_after": args.kill_after, "saved": saved, "recomputed": args.kill_after - saved, "same": same}


def _classifier_with_memory(run):
    """A factory for `ordered_map`: the tile classifier, returning the actor's peak RSS (MB) with each result."""
    from hsiclip.predict import TileClassifier

    def build():
        classify = TileClassifier(run, 64, "cpu", compile=True)
        return lambda item: (*classify(item), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, os.getpid())

    return build


def predict(scene, args: argparse.Namespace) -> dict:
    import hsiclip
    from hsiclip.data.rasters import ArraySource
    from hsiclip.executor import ordered_map
    from hsiclip.predict import tile_items

    run = hsiclip.train(scene, "ours", epochs=1, progress=False)
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(8, 200)).astype(np.float32)
    cube = np.empty((args.size, args.size, 200), dtype=np.int16)
    for r0 in range(0, args.size, 64):
        cube[r0 : r0 + 64] = (1000 + 300 * rng.random((min(64, args.size - r0), args.size, 8), dtype=np.float32)
                              @ basis).astype(np.int16)
    out = {}
    for n in (1, args.workers):
        items = (item for _, item in tile_items(ArraySource(cube), 256, run.window))
        t0 = time.perf_counter()
        first, last, pixels, maps = {}, {}, 0, []
        for pred, _, rss, pid in ordered_map(_classifier_with_memory(run), items, workers=n):
            first.setdefault(pid, rss)
            last[pid] = rss
            pixels += pred.size
            maps.append(pred)
        seconds = time.perf_counter() - t0
        out[n] = {"px_s": pixels / seconds, "seconds": seconds, "first_mb": first, "last_mb": last, "maps": maps}
        print("predict", n, f"{pixels / seconds:.0f} px/s", flush=True)
    out["same"] = all(np.array_equal(a, b) for a, b in zip(out[1]["maps"], out[args.workers]["maps"], strict=True))
    return out


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
    ap.add_argument("--out", type=Path, default=Path("results/scale_out.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    import hsiclip
    from hsiclip.efficiency import machine
    from hsiclip.records import code_version

    scene = hsiclip.load_scene("indian_pines", data_dir=args.data_dir)
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="hsiclip-scale-") as tmp:
        cmp = comparison(scene, args, Path(tmp))
        ovh = overhead(args)
        res = resume(scene, args, Path(tmp))
        pre = predict(scene, args)
    w = args.workers
    cmd = ("python benchmarks/scale_out.py" + (" --data-dir ../shared/data" if args.data_dir else "")
           + f" --workers {w}" + ("" if args.out == Path("results/scale_out.md") else f" --out {args.out}"))

    def mb(d: dict) -> str:
        return ", ".join(f"{v:.0f}" for v in d.values())

    lines = [
        "# Scale-out: one process against a local Ray cluster", "", f"Command: `{cmd}`", "",
        f"Machine: {machine().rsplit(',', 1)[0]}; Python {platform.python_version()}, torch {torch.__version__}, "
        f"Ray {__import__('ray').__version__}; code {code_version()}. Load average before: "
        f"{', '.join(f'{x:.2f}' for x in load0)}. Data: Indian Pines, the paper's protocol. See the script's "
        "docstring for what each figure times.", "",
        f"## Comparison: {args.models} x seeds {args.seeds}", "",
        f"Epochs {args.epochs} (cut for a speed measurement: no accuracy is reported here).", "",
        f"| pairs | one process (s) | Ray, {w} workers (s) | speed-up | records identical |",
        "| --- | --- | --- | --- | --- |",
        f"| {len(cmp['local'])} | {cmp['local_s']:.1f} | {cmp['ray_s']:.1f} | {cmp['local_s'] / cmp['ray_s']:.2f}x "
        f"| {'yes' if cmp['same'] else 'NO'} (metrics of every record) |", "",
        f"Ray's overhead: {ovh['start_s']:.1f} s to start a local cluster of {w} CPUs; an empty task's round trip "
        f"{ovh['task_ms']:.2f} ms (mean of 200, workers running).", "",
        "## Resume after a kill", "",
        f"SSFTT, {args.resume_epochs} epochs, checkpoints every 5, the process killed (SIGKILL) after epoch "
        f"{res['killed_after']}: the run resumed from epoch {res['saved']}, recomputing {res['recomputed']} epochs; "
        f"its losses and metrics equal an uninterrupted run's: {'yes' if res['same'] else 'NO'}.", "",
        f"## Predict: a synthetic {args.size}² cube, 200 bands, the paper's model", "",
        "| workers | seconds | pixels/s | peak RSS per worker after its first tile (MB) | at the end (MB) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for n in (1, w):
        p = pre[n]
        lines.append(f"| {n} | {p['seconds']:.1f} | {p['px_s']:,.0f} | {mb(p['first_mb'])} | {mb(p['last_mb'])} |")
    lines += ["", f"Speed-up {pre[w]['px_s'] / pre[1]['px_s']:.2f}x; the class maps of 1 and {w} workers identical: "
              f"{'yes' if pre['same'] else 'NO'}. Seconds include starting the actors and compiling the model in "
              "each (TorchInductor)."]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
