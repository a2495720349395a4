"""The flagship recipe's ablation (issue 6) on a validation split carved from the training pixels.

    python benchmarks/flagship.py --data-dir ../shared/data --seeds 0 1 --cv 5 --rows 3 4 20
    python benchmarks/flagship.py --data-dir ../shared/data --seeds 0 1 --protocol leakfree --rows 3 4 12

From the paper's recipe to the flagship one step at a time, then one direction at a time on top of the flagship.
Under the paper's protocol with `--cv 5` (results/flagship.md) each row is trained five times per seed, each time on
four of five per-class folds of that seed's 10% training pixels (Indian Pines, random split), and scored on the
fifth: every training pixel is validated once, about 1,025 pixels per seed. Without `--cv`
(results/flagship_holdout.md) a row trains on 80% of the training pixels and is scored on the other 20%, about 200
pixels, where one pixel is half a point: too few to tell the directions apart.
Under the leak-free protocol (`--protocol leakfree`: spatially disjoint split, PCA
fitted on training pixels) the validation pixels are the training strips of a quarter of each class's fields,
away from every remaining training window (`splits.field_holdout`). Either way the choices are made on validation
pixels, never on test pixels, which this script never reads. A direction may join the flagship recipe only if it
raises the mean validation OA; the flagship's test numbers come from `hsiclip compare`
(benchmarks/compare_indian_pines_cpu.sh). Each (row, seed) leaves a small JSON record under --records (committed,
so that later sessions extend the table) and its run folder under --work; finished pairs are not trained again.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch

import hsiclip
from hsiclip.data.protocols import LEAKFREE_WINDOW
from hsiclip.data.splits import Split, disjoint_split, field_holdout, holdout, kfold, random_split
from hsiclip.efficiency import count_parameters, flops_per_sample
from hsiclip.experiments.compare import recipe_changes
from hsiclip.metrics import confusion_metrics
from hsiclip.models import create_vlm
from hsiclip.systems import get_system

FLAGSHIP = "flagship_indian_pines"
_NO_MASK = {"model.mask_ratio": 0.0}
_STEP = {"train.schedule": "constant", "train.warmup_epochs": 0, "train.augment": False}
# the flagship before the cross-validated selection: one 13x13 model with a random quarter of its tokens masked
_13X13 = {"model.window": 13, "model.members": 1, "model.mask_ratio": 0.25}
# the flagship (pinned, so that its rows stay where they are if it changes): two 11x11 members
_TWO_11X11 = {"model.members": 2}
# Rows of options that were measured and dropped (label smoothing, EMA, test-time augmentation, spectral fill and
# noise, multi-scale members, dropout, the CoOp prompt context, best-epoch validation) have left this list with the
# options themselves; their records stay under results/records/flagship and their rows in results/flagship*.md,
# produced by this script at commit 304c9d0.
ROWS = [  # (what changed, base recipe, overrides)
    ("paper recipe (ViT on 3x3 patches, 50 epochs, batch 32)", "paper_indian_pines", {}),
    ("+ SSFTT conv stem, 13x13 window, PCA 30, 2 blocks of 4 heads, 100 epochs, batch 64", FLAGSHIP,
     {**_13X13, **_STEP, **_NO_MASK}),
    ("+ cosine schedule, 5 warm-up epochs", FLAGSHIP, {**_13X13, "train.augment": False, **_NO_MASK}),
    ("+ flips and rotations", FLAGSHIP, {**_13X13, **_NO_MASK}),
    ("+ token masking 25% = 13x13 flagship", FLAGSHIP, _13X13),
    ("13x13 flagship + 3 transformer blocks", FLAGSHIP, {**_13X13, "model.depth": 3}),
    ("13x13 flagship + 150 epochs", FLAGSHIP, {**_13X13, "train.epochs": 150}),
    ("13x13 flagship + prompt ensemble (descriptive + 3 variants)", FLAGSHIP, {**_13X13, "text.prompts": "ensemble"}),
    ("13x13 flagship + full softmax over all classes (M-CLS style)", FLAGSHIP, {**_13X13, "loss.negatives": "all"}),
    ("13x13 flagship + 15x15 window", FLAGSHIP, {**_13X13, "model.window": 15}),
    ("13x13 flagship + 200 epochs", FLAGSHIP, {**_13X13, "train.epochs": 200}),
    ("13x13 flagship + token masking 50%", FLAGSHIP, {**_13X13, "model.mask_ratio": 0.5}),
    ("13x13 flagship + 11x11 window", FLAGSHIP, {**_13X13, "model.window": 11}),
    ("13x13 flagship + 11x11 window, 2 members averaged (a seed ensemble)", FLAGSHIP,
     {**_13X13, "model.window": 11, "model.members": 2}),
    ("13x13 flagship + PCA 15, 2 members averaged (a seed ensemble)", FLAGSHIP,
     {**_13X13, "data.pca_components": 15, "model.members": 2}),
    ("13x13 flagship + 11x11 window, 2 members averaged, no token masking = flagship recipe", FLAGSHIP, _TWO_11X11),
    ("flagship as four 9x9 members", FLAGSHIP, {"model.window": 9, "model.members": 4}),
    ("flagship + 3 transformer blocks", FLAGSHIP, {**_TWO_11X11, "model.depth": 3}),
    ("flagship + learning rate 2e-3", FLAGSHIP, {**_TWO_11X11, "train.lr": 2e-3}),
]
# what the "13x13 flagship ..." and "flagship ..." rows are measured against: the row whose label ends so
BASELINES = {"13x13 flagship ": "= 13x13 flagship", "flagship ": "= flagship recipe"}


def row_key(base: str, over: dict) -> str:
    """A row's record folder: its base recipe and overrides, readable and stable when rows are added or moved."""
    return base + "".join(f"+{k}={v}" for k, v in sorted(over.items()))


def split_for(protocol: str, scene, seed: int, fraction: float, cv: int = 0,
              fold: int = 0) -> tuple[Split, np.ndarray]:
    """(training split without the validation pixels, validation pixels) for one seed (and fold, with `cv` folds)."""
    if cv:
        return kfold(random_split(scene.labels, fraction=fraction, seed=seed), scene.labels, cv, fold, seed)
    if protocol == "leakfree":
        full = disjoint_split(scene.labels, fraction=fraction, window=LEAKFREE_WINDOW, seed=seed,
                              class_names=scene.class_names)
        return field_holdout(full, scene.labels, 0.25, LEAKFREE_WINDOW, seed)
    return holdout(random_split(scene.labels, fraction=fraction, seed=seed), scene.labels, 0.2, seed)
PARAMS_MAX, FLOPS_MAX = 1_000_000, 0.05e9  # issue 6's budget


def cost(cfg) -> tuple[int, float]:
    model = create_vlm(cfg.model, cfg.data.pca_components, torch.zeros(16, 384))
    w = cfg.model.window
    return count_parameters(model, trainable=True), flops_per_sample(model, torch.zeros(w, w, cfg.data.pca_components))


def classical_rows(scene, args) -> list[dict]:
    """The RBF SVM and the random forest of the comparison on each seed's validation split (seconds each): whether
    the validation pixels rank them against the window models as the test pixels do is what makes them usable."""
    rows = []
    for name, what in (("svm", "calibration: RBF SVM on PCA pixels"), ("rf", "calibration: random forest")):
        ms = []
        for seed in args.seeds:
            record = args.records / args.protocol / name / f"seed{seed}.json"
            if not record.is_file():
                inner, val = split_for(args.protocol, scene, seed, 0.1)
                run = hsiclip.train(scene, name, seed=seed, protocol="leakfree", split=Split(inner.train, val),
                                    progress=False)
                m = {k: run.metrics[k] for k in ("oa", "aa", "kappa", "per_class")} | {
                    "seed": seed, "timing": {"train_s": run.metrics["timing"]["train_s"],
                                             "machine": platform.processor()}}
                record.parent.mkdir(parents=True, exist_ok=True)
                record.write_text(json.dumps(m, indent=1) + "\n")
            ms.append(json.loads(record.read_text()))
        stat = {k: (float(np.mean([m[k] for m in ms])), float(np.std([m[k] for m in ms])))
                for k in ("oa", "aa", "kappa")}
        rows.append({"what": what, **stat, "params": 0, "flops": 0.0, "seeds": [m["seed"] for m in ms],
                     "records": ms, "train_s": float(np.mean([m["timing"]["train_s"] for m in ms])),
                     "machine": ms[0]["timing"]["machine"]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--protocol", choices=["paper", "leakfree"], default="paper")
    ap.add_argument("--work", type=Path, default=Path("runs/flagship"))
    ap.add_argument("--records", type=Path, default=Path("results/records/flagship"))
    ap.add_argument("--out", type=Path, default=None,
                    help="default results/flagship.md (paper protocol) or results/flagship_leakfree.md")
    ap.add_argument("--cv", type=int, default=0, metavar="K",
                    help="paper protocol: score each row by K-fold cross-validation over the training pixels (every "
                         "training pixel validated once per seed) instead of one 20%% holdout")
    ap.add_argument("--no-train", action="store_true", help="tabulate the finished rows only")
    ap.add_argument("--rows", type=int, nargs="+", default=None,
                    help="train only these rows (0-based, in table order); the table shows every finished row")
    args = ap.parse_args()
    if args.cv and args.protocol != "paper":
        ap.error("--cv is for the paper's protocol (the leak-free one holds out whole fields)")
    out = args.out or Path("results/flagship.md" if args.cv else "results/flagship_holdout.md"
                           if args.protocol == "paper" else "results/flagship_leakfree.md")
    scene = hsiclip.load_scene("indian_pines", data_dir=args.data_dir)
    cache = Path(tempfile.mkdtemp(prefix="hsiclip-text-"))  # embed each prompt set once for all rows
    results = []
    folds = range(args.cv) if args.cv else [None]
    tag = f"cv{args.cv}" if args.cv else args.protocol
    for i, (what, base, over) in enumerate(ROWS):
        ms = []
        for seed in args.seeds:
            system = get_system(base)
            cfg = system.recipe(scene.name, seed=seed, **over)
            parts = []
            for fold in folds:
                name = f"seed{seed}" + (f"-fold{fold}" if fold is not None else "")
                record = args.records / tag / row_key(base, over) / f"{name}.json"
                m = json.loads(record.read_text()) if record.is_file() else None
                stale = m is not None and recipe_changes(m.get("recipe"), system.flat_recipe(cfg))
                if stale:  # trained before the base recipe changed: not this row any more
                    print(f"{record}: trained with another recipe ({'; '.join(stale)})", flush=True)
                if m is None or stale:
                    if args.no_train or (args.rows is not None and i not in args.rows):
                        break
                    inner, val = split_for(args.protocol, scene, seed, cfg.data.train_fraction, args.cv, fold or 0)
                    # the validation pixels stand in for the test split: this script never reads test pixels
                    run = hsiclip.train(scene, system, seed=seed, protocol=args.protocol,
                                        split=Split(inner.train, val), progress=False, cache_dir=cache, **over)
                    run.save(args.work / tag / row_key(base, over) / name)
                    m = {k: run.metrics[k] for k in ("oa", "aa", "kappa", "per_class", "confusion", "timing")} | {
                        "seed": seed, "n_train": len(inner.train), "n_val": len(val),
                        "val_classes": len(np.unique(scene.labels.reshape(-1)[val])),
                        "recipe": system.flat_recipe(cfg)}
                    record.parent.mkdir(parents=True, exist_ok=True)
                    record.write_text(json.dumps(m, indent=1) + "\n")
                parts.append(m)
            if len(parts) < len(folds):
                continue
            m = parts[0]
            if args.cv:  # one seed's score: the folds' confusion matrices summed (every training pixel once)
                m = confusion_metrics(np.sum([p["confusion"] for p in parts], axis=0)) | {
                    "seed": seed, "n_val": sum(p["n_val"] for p in parts), "val_classes": parts[0]["val_classes"],
                    "timing": {"train_s": float(np.mean([p["timing"]["train_s"] for p in parts])),
                               "machine": parts[0]["timing"].get("machine", platform.processor())}}
            ms.append(m)
            print(what, seed, f"val OA {m['oa']:.2f}", flush=True)
        if not ms:
            continue
        params, flops = cost(get_system(base).recipe(scene.name, **over))
        stat = {k: (float(np.mean([m[k] for m in ms])), float(np.std([m[k] for m in ms])))
                for k in ("oa", "aa", "kappa")}
        results.append({"what": what, **stat, "params": params, "flops": flops, "seeds": [m["seed"] for m in ms],
                        "records": ms,
                        "train_s": float(np.mean([m["timing"]["train_s"] for m in ms])),
                        "machine": ms[0]["timing"].get("machine", platform.processor())})
    if args.protocol == "leakfree":  # calibration: the pixel classifiers, on the same validation pixels
        results += classical_rows(scene, args)
    base_rows = {start: next((r for r in results if r["what"].endswith(end)), None) for start, end in BASELINES.items()}
    seeds = ", ".join(map(str, args.seeds))
    recs = [m for r in results for m in r["records"] if "n_val" in m]
    n_val = f"{np.mean([m['n_val'] for m in recs]):.0f}" if recs else "about 200"
    n_cls = f"{np.mean([m['val_classes'] for m in recs]):.1f}" if recs else "?"
    if args.protocol == "leakfree":
        data = (f"Indian Pines, the leak-free protocol's training pixels (spatially disjoint split, w{LEAKFREE_WINDOW} "
                f"margin, PCA fitted on training pixels; seeds {seeds}); every row trains on the strips of three "
                f"quarters of each class's fields and is scored on the strips of the other quarter, away from every "
                f"training window (validation: {n_val} pixels of {n_cls} classes on average)")
    elif args.cv:
        data = (f"Indian Pines, the paper's random 10% training pixels per class (seeds {seeds}); every row is trained "
                f"{args.cv} times, each time on {args.cv - 1} of {args.cv} per-class folds of those pixels, and scored "
                f"on the fold left out; a seed's score sums the folds' confusion matrices ({n_val} validation pixels "
                f"per seed: every training pixel once, so one pixel is about {100 / float(n_val):.2f} points)")
    else:
        data = (f"Indian Pines, the paper's random 10% training pixels per class (seeds {seeds}); every row trains on "
                f"80% of them and is scored on the other 20% (validation, {n_val} pixels, so one pixel is 0.5 points)")
    lines = [
        "# Flagship recipe: ablation on validation pixels (Indian Pines"
        + (", leak-free protocol)" if args.protocol == "leakfree" else ")"), "",
        f"Command: `python benchmarks/flagship.py --data-dir ../shared/data --seeds {' '.join(map(str, args.seeds))}"
        + (" --protocol leakfree`" if args.protocol == "leakfree" else f" --cv {args.cv}`" if args.cv else "`"), "",
        f"Machine: {results[0]['machine']}. Data: {data}; test pixels are never read here. OA, AA, κ "
        "(×100) are mean ± std (population) over the seeds. Parameters count trainable weights; GFLOPs are per pixel "
        "(PyTorch's counter). Train s is wall time on a CPU shared with other jobs "
        "(indicative only). Budget (issue 6): at most 1M parameters and 0.05 GFLOPs. Verdict: the row's OA against "
        "the row its label starts from (13x13 flagship or flagship), paired by seed; 'within one "
        "pixel' where the mean difference is below one validation pixel.", "",
        "| what changed | seeds | val OA | val AA | val κ | trainable params | GFLOPs | train s | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        over_budget = r["params"] > PARAMS_MAX or r["flops"] > FLOPS_MAX
        flagship = next((base_rows[k] for k in BASELINES if r["what"].startswith(k)), None)
        if flagship is not None:
            # paired by seed: a row is compared with the flagship on the seeds both have finished
            base = {m["seed"]: m["oa"] for m in flagship["records"]}
            diffs = [m["oa"] - base[m["seed"]] for m in r["records"] if m["seed"] in base]
            if not diffs:
                verdict = "no seed in common with the flagship row"
            else:
                gain = float(np.mean(diffs))
                pixel = 100.0 / np.mean([m["n_val"] for m in r["records"]])  # one validation pixel, in points
                verdict = ("over budget" if over_budget else "within one pixel" if abs(gain) < pixel - 1e-9
                           else "helps" if gain > 0 else "does not help")
                mixed = min(diffs) < 0 < max(diffs)
                verdict += f" ({gain:+.2f}" + (", 1 seed" if len(diffs) == 1 else ", seeds disagree" if mixed
                                               else f", {len(diffs)} seeds") + ")"
        else:
            verdict = "over budget" if over_budget else ""
        params = f"{r['params']:,}" if r["params"] else "–"
        gflops = f"{r['flops'] / 1e9:.4f}" if r["flops"] else "–"
        lines.append(f"| {r['what']} | {' '.join(map(str, r['seeds']))} | {r['oa'][0]:.2f} ± {r['oa'][1]:.2f} "
                     f"| {r['aa'][0]:.2f} ± {r['aa'][1]:.2f} "
                     f"| {r['kappa'][0]:.2f} ± {r['kappa'][1]:.2f} | {params} | {gflops} "
                     f"| {r['train_s']:.1f} | {verdict} |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
