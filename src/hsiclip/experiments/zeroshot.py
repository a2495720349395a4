"""What the text side can do that a softmax head cannot: `hsiclip reproduce zero-shot` and `few-shot`.

zero-shot: the classes split into `FOLDS` disjoint groups (a fixed permutation: `class_folds`); each run leaves one
group out of training and scores it from its prompts (`pipeline.train(unseen=...)`), generalized (every class a
candidate: seen and unseen mean per-class accuracy, their harmonic mean H) and conventional (unseen pixels and
candidates only), as Xian et al. (TPAMI 2018). Every run is also scored with random unit vectors in place of the
unseen prompts' embeddings; only a gain over that control shows that the text carries information. Variants: every
encoder available here with descriptive prompts, and the recipe's encoder with label-only prompts.

few-shot: 1, 3, 5 and 10 training pixels per class (`per_class`, cut from the protocol's own split, so one test set
for every count), ours against vision-only and SSFTT, and ours trained against random prototypes instead of the
prompts' embeddings.

Both run every (variant, fold or count, seed) under the paper's and the leak-free protocol at the systems' own
epochs, resumably (one record per run under the work folder, as `hsiclip compare`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.protocols import protocol_tag
from ..data.scenes import Scene
from ..efficiency import machine
from ..records import RecordStore
from ..systems import get_system
from ..text.encoders import encoder_available
from .catalog import Experiment, register
from .report import mean_std
from .runner import Job, execute

FOLDS = 4
PROTOCOLS = ("paper", "leakfree")
ENCODERS = ("minilm", "all-mpnet-base-v2", "multilingual-e5-small-q4")  # MiniLM, MPNet, E5-small
COUNTS = (1, 3, 5, 10)
FEW_SHOT = (("ours", "text", "ours"), ("ours", "random", "ours, random prototypes"),
            ("vision_only", "text", "vision-only"), ("ssftt", "text", "SSFTT"))
METRICS = ("seen", "unseen", "h", "zsl")


def class_folds(class_names: Sequence[str], folds: int = FOLDS) -> list[list[str]]:
    """The classes in `folds` disjoint groups of (nearly) equal size, from one fixed permutation (seed 0)."""
    order = np.random.default_rng(0).permutation(len(class_names))
    return [[class_names[i] for i in sorted(part)] for part in np.array_split(order, folds)]


def _variants(scene: str) -> list[tuple[str, str]]:
    default = get_system("ours").recipe(scene).text.encoder
    return [*((e, "descriptive") for e in dict.fromkeys([default, *ENCODERS])), (default, "label")]


def _run(jobs: list[Job], scene: Scene, train_missing: bool, device: str, progress: bool,
         log: Callable[[str], None], executor: str, address: str | None, workers: int | None) -> None:
    todo = [j for j in jobs if RecordStore.load(j.stem) is None]
    if todo and train_missing:
        log(f"{len(todo)} of {len(jobs)} runs to train")
        execute(todo, scene, executor=executor, address=address, workers=workers, device=device, progress=progress,
                log_line=log)


def _fmt(values: list[float | None]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "–"
    m, s = mean_std(vals)
    return f"{m:.2f} ± {s:.2f}"


def _budget(system: str, epochs: dict[str, int] | None) -> tuple[dict[str, int], str]:
    """The job's `epochs` argument and the stem part naming a reduced budget (`--epochs NAME=N`)."""
    n = (epochs or {}).get(system)
    return ({}, "") if n is None else ({"epochs": n}, f"-ep{n}")


def _reduced_note(epochs: dict[str, int] | None) -> list[str]:
    if not epochs:
        return []
    return ["", f"**Reduced budget, not comparable:** {', '.join(f'{k} {v} epochs' for k, v in epochs.items())} "
                "instead of the systems' own (`--epochs`)."]


def zero_shot(scene: Scene, seeds: Sequence[int], *, stem: Path, command: str, work_dir: Path, device: str = "cpu",
              cache_dir: Path | None = None, progress: bool = True, train_missing: bool = True,
              log: Callable[[str], None] = print, executor: str = "local", address: str | None = None,
              workers: int | None = None, epochs: dict[str, int] | None = None, **_: Any) -> list[Path]:
    folds = class_folds(scene.class_names)
    budget, suffix = _budget("ours", epochs)
    cells = []  # (protocol tag, encoder, prompts, fold, seed, job)
    for protocol in PROTOCOLS:
        tag = protocol_tag(protocol)[0]
        for encoder, prompts in _variants(scene.name):
            for k, unseen in enumerate(folds):
                for seed in seeds:
                    s = (Path(work_dir) / scene.name / tag / "zero-shot" / f"{encoder}-{prompts}" / f"fold{k}"
                         / f"seed{seed}{suffix}")
                    job = Job(s, "ours", seed, f"zero-shot, {tag}, {encoder} {prompts}, fold {k}, seed {seed}",
                              {"protocol": protocol, "unseen": unseen, "text.encoder": encoder,
                               "text.prompts": prompts, "cache_dir": cache_dir, **budget})
                    cells.append((tag, encoder, prompts, k, seed, job))
    _run([c[5] for c in cells], scene, train_missing, device, progress, log, executor, address, workers)
    table = []
    for tag, encoder, prompts in dict.fromkeys((c[0], c[1], c[2]) for c in cells):
        mine = [c for c in cells if c[:3] == (tag, encoder, prompts)]
        recs = [r for c in mine if (r := RecordStore.load(c[5].stem)) is not None]
        status = "" if len(recs) == len(mine) else f"{len(recs)} of {len(mine)} runs"
        if not recs:
            status = "not run yet" if encoder_available(encoder) else "encoder not available here"
        for control in ("text", "random"):
            row = {"protocol": tag, "encoder": encoder, "prompts": prompts, "unseen_prototypes": control,
                   "runs": len(recs), "status": status}
            for m in METRICS:
                vals = [r["zero_shot"][control][m] for r in recs]
                row[m] = vals
            pairs = [(r["zero_shot"]["text"]["h"], r["zero_shot"]["random"]["h"]) for r in recs]
            row["h_wins"] = sum(t > r for t, r in pairs)
            table.append(row)
    md, csv_path, png = stem.with_suffix(".md"), stem.with_suffix(".csv"), stem.with_suffix(".png")
    md.write_text(_zero_shot_md(scene, folds, seeds, table, command, epochs))
    _csv(csv_path, table, METRICS)
    _zero_shot_figure(table, scene, png)
    return [md, csv_path, png]


def _zero_shot_md(scene: Scene, folds: list[list[str]], seeds: Sequence[int], table: list[dict], command: str,
                  epochs: dict[str, int] | None = None) -> str:
    c = len(scene.class_names)
    lines = [f"# Zero-shot: classes with no training pixel, scored from their prompts ({scene.name})", "",
             f"Produced by `{command}` on {scene.name} ({scene.source}); seeds {', '.join(map(str, seeds))}; "
             f"{machine()}. Each run trains our model (the paper recipe, its epochs) without one group of classes and "
             "scores every test pixel against every class's prototype: generalized zero-shot (GZSL, Xian et al., "
             "TPAMI 2018) mean per-class accuracy on the seen and on the unseen classes and their harmonic mean H, "
             "and conventional zero-shot accuracy (ZSL: unseen test pixels, unseen candidates only). The same "
             "trained model is scored again with random unit vectors as the unseen classes' prototypes: the text "
             "carries information only where it beats that control. Mean ± std over folds × seeds.", "",
             f"Chance: {100 / c:.2f} (GZSL, {c} classes), {100 * FOLDS / c:.2f} (ZSL, {c // FOLDS} unseen).", "",
             "Folds (the unseen classes of each): " + "; ".join(f"{k}: {', '.join(f)}" for k, f in enumerate(folds)),
             *_reduced_note(epochs), "",
             "| protocol | encoder | prompts | unseen prototypes | runs | seen | unseen | H | ZSL | H above the "
             "random control in |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for t in table:
        wins = f"{t['h_wins']} of {t['runs']} runs" if t["unseen_prototypes"] == "text" and t["runs"] else ""
        runs = f"{t['runs']}" + (f" ({t['status']})" if t["status"] else "")
        lines.append(f"| {t['protocol']} | {t['encoder']} | {t['prompts']} | {t['unseen_prototypes']} | {runs} | "
                     + " | ".join(_fmt(t[m]) for m in METRICS) + f" | {wins} |")
    lines += ["", "## Findings", ""]
    for t in table:
        if t["unseen_prototypes"] != "text" or not t["runs"]:
            continue
        rand = next(r for r in table if r["unseen_prototypes"] == "random" and r["protocol"] == t["protocol"]
                    and r["encoder"] == t["encoder"] and r["prompts"] == t["prompts"])
        gain = np.mean(t["h"]) - np.mean(rand["h"])
        carries = gain > 0 and t["h_wins"] >= 0.75 * t["runs"]
        partial = "" if not t["status"] else f" ({t['status']}: not final)"
        lines.append(f"- {t['protocol']}, {t['encoder']}, {t['prompts']} prompts{partial}: H {np.mean(t['h']):.2f} "
                     f"with the prompts against {np.mean(rand['h']):.2f} with random prototypes ({gain:+.2f}; "
                     f"higher in {t['h_wins']} of {t['runs']} runs): "
                     + ("**the text carries information about the unseen classes**." if carries else
                        "**no evidence that the text carries information about the unseen classes**."))
    return "\n".join(lines) + "\n"


def _csv(path: Path, table: list[dict], metrics: Sequence[str]) -> None:
    import csv

    keys = [k for k in table[0] if k not in metrics] if table else []
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*keys, *(f"{m}_{s}" for m in metrics for s in ("mean", "std"))])
        for t in table:
            stats = []
            for m in metrics:
                vals = [v for v in t[m] if v is not None]
                stats += list(mean_std(vals)) if vals else ["", ""]
            w.writerow([t[k] for k in keys] + stats)


def _protocol_panels(table: list[dict]) -> tuple[Any, list[tuple[Any, str]]]:
    """A figure with one panel per protocol of `table` (a shared y axis), and the (axes, protocol) pairs."""
    from .plots import plt  # the headless backend is chosen there

    tags = list(dict.fromkeys(t["protocol"] for t in table))
    fig, axes = plt.subplots(1, len(tags), figsize=(5.5 * len(tags), 4), sharey=True, constrained_layout=True,
                             squeeze=False)
    return fig, list(zip(axes[0], tags, strict=True))


def _save(fig: Any, path: Path) -> None:
    from .plots import plt

    fig.savefig(path, dpi=150)
    plt.close(fig)


def _zero_shot_figure(table: list[dict], scene: Scene, path: Path) -> None:
    fig, panels = _protocol_panels(table)
    for ax, tag in panels:
        variants = list(dict.fromkeys((t["encoder"], t["prompts"]) for t in table if t["protocol"] == tag))
        for j, control in enumerate(("text", "random")):
            rows = [next(t for t in table if t["protocol"] == tag and (t["encoder"], t["prompts"]) == v
                         and t["unseen_prototypes"] == control) for v in variants]
            means = [np.mean(r["h"]) if r["runs"] else np.nan for r in rows]
            stds = [np.std(r["h"]) if r["runs"] else 0 for r in rows]
            ax.bar(np.arange(len(variants)) + 0.38 * (j - 0.5), means, 0.38, yerr=stds, capsize=3,
                   label="unseen prototypes from the prompts" if control == "text" else "random unit vectors")
        ax.set_xticks(range(len(variants)), [f"{e}\n{p}" for e, p in variants], fontsize=8)
        ax.set_title(tag, fontsize=10)
        ax.set_ylabel("GZSL harmonic mean H (%)")
    panels[0][0].legend(fontsize=8)
    fig.suptitle(f"{scene.name}: zero-shot, unseen classes scored from their prompts")
    _save(fig, path)


def few_shot(scene: Scene, seeds: Sequence[int], *, stem: Path, command: str, work_dir: Path, device: str = "cpu",
             cache_dir: Path | None = None, progress: bool = True, train_missing: bool = True,
             log: Callable[[str], None] = print, executor: str = "local", address: str | None = None,
             workers: int | None = None, epochs: dict[str, int] | None = None, **_: Any) -> list[Path]:
    cells = []  # (tag, label, count, seed, job)
    for protocol in PROTOCOLS:
        tag = protocol_tag(protocol)[0]
        for system, prototypes, label in FEW_SHOT:
            for n in COUNTS:
                for seed in seeds:
                    name = system + ("" if prototypes == "text" else f"-{prototypes}-prototypes")
                    budget, suffix = _budget(system, epochs)
                    s = Path(work_dir) / scene.name / tag / "few-shot" / name / f"n{n}" / f"seed{seed}{suffix}"
                    extra = {**budget, **({} if prototypes == "text" else {"prototypes": prototypes})}
                    cells.append((tag, label, n, seed, Job(s, system, seed, f"few-shot, {tag}, {label}, {n} per "
                                                          f"class, seed {seed}", {"protocol": protocol,
                                                                                  "per_class": n,
                                                                                  "cache_dir": cache_dir, **extra})))
    _run([c[4] for c in cells], scene, train_missing, device, progress, log, executor, address, workers)
    table = []
    for tag, label, n in dict.fromkeys(c[:3] for c in cells):
        mine = [c for c in cells if c[:3] == (tag, label, n)]
        recs = [r for c in mine if (r := RecordStore.load(c[4].stem)) is not None]
        table.append({"protocol": tag, "system": label, "per_class": n, "runs": len(recs),
                      "status": "" if len(recs) == len(mine) else f"{len(recs)} of {len(mine)} runs",
                      "oa": [r["oa"] for r in recs], "aa": [r["aa"] for r in recs],
                      "kappa": [r["kappa"] for r in recs]})
    md, csv_path, png = stem.with_suffix(".md"), stem.with_suffix(".csv"), stem.with_suffix(".png")
    md.write_text(_few_shot_md(scene, seeds, table, command, epochs))
    _csv(csv_path, table, ("oa", "aa", "kappa"))
    _few_shot_figure(table, scene, png)
    return [md, csv_path, png]


def _few_shot_md(scene: Scene, seeds: Sequence[int], table: list[dict], command: str,
                 epochs: dict[str, int] | None = None) -> str:
    lines = [f"# Few labels: does the text prior help when pixels are scarce? ({scene.name})", "",
             f"Produced by `{command}` on {scene.name} ({scene.source}); seeds {', '.join(map(str, seeds))}; "
             f"{machine()}. N training pixels per class, drawn (seeded) from the protocol's own training split, so "
             "every N shares one test set (a class with fewer training pixels in the leak-free split keeps all of "
             "them); each system at its own epochs. `ours, random prototypes` trains the same model against random "
             "unit vectors instead of the prompts' embeddings. OA, AA (%) and κ (×100), mean ± std over seeds.",
             *_reduced_note(epochs), "",
             "| protocol | system | pixels per class | runs | OA | AA | κ |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for t in table:
        runs = f"{t['runs']}" + (f" ({t['status']})" if t["status"] else "")
        lines.append(f"| {t['protocol']} | {t['system']} | {t['per_class']} | {runs} | {_fmt(t['oa'])} | "
                     f"{_fmt(t['aa'])} | {_fmt(t['kappa'])} |")
    lines += ["", "## Findings", ""]
    for tag in dict.fromkeys(t["protocol"] for t in table):
        for n in COUNTS:
            row = {t["system"]: t for t in table if t["protocol"] == tag and t["per_class"] == n}
            ours, rand, vis = row["ours"], row["ours, random prototypes"], row["vision-only"]
            if not (ours["runs"] and rand["runs"] and vis["runs"]):
                lines.append(f"- {tag}, {n} per class: not all rows have run yet.")
                continue
            d_rand = np.mean(ours["oa"]) - np.mean(rand["oa"])
            d_vis = np.mean(ours["oa"]) - np.mean(vis["oa"])
            spread = max(np.std(ours["oa"]), np.std(rand["oa"]))
            verdict = ("the prompts help" if d_rand > spread else "the prompts hurt" if -d_rand > spread
                       else "no difference beyond one std")
            partial = "" if not any(t["status"] for t in row.values()) else " (not every seed has run: not final)"
            lines.append(f"- {tag}, {n} per class{partial}: ours {_fmt(ours['oa'])} OA, with random prototypes "
                         f"{_fmt(rand['oa'])} ({d_rand:+.2f}: {verdict}); vision-only {_fmt(vis['oa'])} "
                         f"({d_vis:+.2f}).")
    return "\n".join(lines) + "\n"


def _few_shot_figure(table: list[dict], scene: Scene, path: Path) -> None:
    fig, panels = _protocol_panels(table)
    for ax, tag in panels:
        for label in dict.fromkeys(t["system"] for t in table):
            rows = [t for t in table if t["protocol"] == tag and t["system"] == label and t["runs"]]
            if rows:
                ax.errorbar([t["per_class"] for t in rows], [np.mean(t["oa"]) for t in rows],
                            yerr=[np.std(t["oa"]) for t in rows], marker="o", capsize=3, label=label)
        ax.set_xscale("log")
        ax.set_xticks(COUNTS, [str(n) for n in COUNTS])
        ax.set_xlabel("training pixels per class")
        ax.set_ylabel("OA (%)")
        ax.set_title(tag, fontsize=10)
    panels[0][0].legend(fontsize=8)
    fig.suptitle(f"{scene.name}: few labels")
    _save(fig, path)


register(Experiment("zero-shot", "Unseen classes from their descriptions (GZSL and ZSL, random-prototype control)",
                    "beyond the paper", figure=zero_shot, systems=("ours",)))
register(Experiment("few-shot", "1, 3, 5 and 10 labelled pixels per class, with and without the text prior",
                    "beyond the paper", figure=few_shot, systems=("ours", "vision_only", "ssftt")))
