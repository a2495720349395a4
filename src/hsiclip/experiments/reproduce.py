"""The paper's tables and figures as named, resumable experiments: `hsiclip reproduce NAME`.

A table experiment is a list of rows; each row is one system (our recipe, possibly with config changes, or a
comparison baseline) at one training share, trained once per seed. Results are cached per (config, seed):

- a row that *is* a comparison system (the paper recipe, M-CLS CLIP, DCTN, vision-only, ...) reuses the records of
  `hsiclip compare` (`run_comparison`, same work folder, same split per seed), so nothing is trained twice;
- a row that changes our recipe (another loss, batch size, prompt type, text encoder) is a run folder named by
  its changes, `<work>/<scene>/vlm/<system>/<section.field=value,...>/seed<S>`.

A second call with nothing changed trains nothing. Figure experiments (`embeddings`, `loss-landscape`, `maps`) work
on the trained comparison runs of `ours` and `mcls_clip` (and the Table 1 baselines for `maps`).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.scenes import Scene
from ..efficiency import machine
from ..records import RecordStore
from ..systems import get_system
from ..text.encoders import ENCODERS, encoder_available
from . import figures, zeroshot  # noqa: F401  (register the figure, zero-shot and few-shot experiments)
from .catalog import EXPERIMENTS, Experiment, Finding, Row, register
from .compare import plan_comparison, recipe_changes
from .report import full_budget, mean_std, paper_numbers
from .runner import Job, execute


def recipe(system: str, scene: str) -> Any:
    return get_system(system).recipe(scene)


def experiment_names() -> list[str]:
    """The table experiments in the paper's order, then the figure experiments."""
    return sorted(EXPERIMENTS.in_order(), key=lambda n: EXPERIMENTS.get(n).figure is not None)


def _ours(label: str, paper: float | None = None, **overrides: Any) -> Row:
    return Row(label, "ours", tuple(sorted(overrides.items())), paper_oa=paper)


# --- Table 2: the loss components ------------------------------------------------------------------------------
register(Experiment(
    "loss-ablation", "Loss components (hard and semi-hard negatives)", "Table 2",
    rows=lambda scene: [
        _ours("without hard negatives", 90.16, **{"loss.negatives": "semi"}),
        _ours("without semi-hard negatives", 93.44, **{"loss.negatives": "hard"}),
        _ours("full (hard + semi-hard)", 94.03),
    ],
    findings=(Finding("full > without semi-hard > without hard", "order",
                      ("full (hard + semi-hard)", "without semi-hard negatives",
                       "without hard negatives")),),
))

# --- Table 3: the training share, ours against DCTN --------------------------------------------------------------
_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5)
PAPER_TABLE3 = {"ours": (94.03, 97.68, 98.57, 98.97, 99.02), "dctn": (92.85, 95.37, 95.81, 96.01, 96.10)}


def _fraction_rows(scene: str) -> list[Row]:
    rows = []
    for system, label in (("ours", "ours"), ("dctn", "DCTN")):
        for f, paper in zip(_FRACTIONS, PAPER_TABLE3[system], strict=True):
            rows.append(Row(f"{label}, {f:.0%}", system, fraction=f, paper_oa=paper, series=label, x=100 * f))
    return rows


register(Experiment(
    "train-fraction", "Share of labelled pixels used for training, ours against DCTN", "Table 3",
    rows=_fraction_rows, x_label="training pixels per class (%)",
    findings=(*(Finding(f"ours > DCTN at {f:.0%}", "order", (f"ours, {f:.0%}", f"DCTN, {f:.0%}"))
                for f in _FRACTIONS),
              Finding("ours improves with every step of the training share", "order",
                      tuple(f"ours, {f:.0%}" for f in reversed(_FRACTIONS)))),
))

# --- Table 4: batch size -----------------------------------------------------------------------------------------
_BATCH = {4: 93.19, 8: 93.45, 16: 93.54, 32: 94.03, 64: 93.34, 128: 91.12}


def _batch_rows(scene: str) -> list[Row]:
    default = recipe("ours", scene).train.batch_size
    return [Row(f"batch {b}", "ours", () if b == default else (("train.batch_size", b),), paper_oa=paper,
                series="ours", x=b) for b, paper in _BATCH.items()]


register(Experiment(
    "batch-size", "Batch size (the epochs stay at the recipe's, so small batches take more steps)", "Table 4",
    rows=_batch_rows, x_label="batch size", log_x=True,
    findings=(Finding("batch 32 is best", "best", tuple(f"batch {b}" for b in (32, 4, 8, 16, 64, 128))),),
))

# --- Table 5: prompt type ----------------------------------------------------------------------------------------
register(Experiment(
    "prompts", "Prompt type", "Table 5",
    rows=lambda scene: [
        _ours("label only", 92.90, **{"text.prompts": "label"}),
        _ours("short text", 93.07, **{"text.prompts": "short"}),
        _ours("descriptive (ours)", 94.03),
        _ours("descriptive + 3 variants, averaged", None, **{"text.prompts": "ensemble"}),
    ],
    findings=(Finding("descriptive > short > label-only", "order",
                      ("descriptive (ours)", "short text", "label only")),),
))


# --- Table 6: text encoders --------------------------------------------------------------------------------------
_PAPER_ENCODERS = {"bge-large-en-v1.5": 94.03, "bge-m3": 93.04, "multilingual-e5-large": 92.72}


def _encoder_label(name: str) -> str:
    spec = ENCODERS.get(name)
    return f"{name} ({spec.language}, {spec.family}, {spec.dim}-d)"


def _encoder_rows(scene: str) -> list[Row]:
    """The paper's three encoders first, then every other registered one (the recipe's default among them)."""
    default = recipe("ours", scene).text.encoder
    names = [*_PAPER_ENCODERS, *(n for n in ENCODERS.names() if n not in _PAPER_ENCODERS)]
    return [Row(_encoder_label(n), "ours", () if n == default else (("text.encoder", n),),
                paper_oa=_PAPER_ENCODERS.get(n), paper_table1=False) for n in names]


register(Experiment(
    "text-encoders", "Frozen text encoder", "Table 6", rows=_encoder_rows,
    findings=(Finding("bge-large-en-v1.5 > bge-m3 > multilingual-e5-large", "order",
                      tuple(_encoder_label(n) for n in _PAPER_ENCODERS)),
              Finding("an English encoder beats the multilingual ones (here: the best English encoder available "
                      "against multilingual-e5-small-q4)", "best",
                      (_encoder_label("all-mpnet-base-v2"), _encoder_label("multilingual-e5-small-q4")))),
    notes=("Encoders whose weights are not on this machine are listed as not available here; they run where the "
           "model is present locally (or with --download where the model hub is reachable). The paper's numbers "
           "are for its own encoders only; minilm, all-mpnet-base-v2 and multilingual-e5-small-q4 are ours.",),
))

# --- Table 7: with and without text ------------------------------------------------------------------------------
register(Experiment(
    "vision-only", "With and without text prompts", "Table 7",
    rows=lambda scene: [Row("descriptive prompts (VLM, ours)", "ours"),
                        Row("vision-only (same ViT, linear head, cross-entropy)", "vision_only")],
    findings=(Finding("prompts > vision-only", "order",
                      ("descriptive prompts (VLM, ours)", "vision-only (same ViT, linear head, cross-entropy)")),),
))

# --- Table 8: more baselines -------------------------------------------------------------------------------------
register(Experiment(
    "more-baselines", "Pixel-level and training-efficient baselines", "Table 8",
    rows=lambda scene: [Row("GAF-NAU", "gaf_nau"), Row("FFA + BP (Forward-Forward)", "forward_forward"),
                        Row("ours", "ours")],
    findings=(Finding("ours > GAF-NAU > FFA + BP", "order", ("ours", "GAF-NAU", "FFA + BP (Forward-Forward)")),),
))


# --- running the rows --------------------------------------------------------------------------------------------
def variant_dir(work_dir: Path, scene: str, row: Row) -> Path:
    """The run folders of a recipe variant: `<work>/<scene>/vlm/<system>/<changes>[-frac<f>]`, one `seed<S>` each.

    Keyed by what the row changes (readable, and stable when the config gains a field with a default), not by the
    whole resolved config; each run folder keeps its full `config.json`.
    """
    changes = ",".join(f"{k}={v}" for k, v in row.overrides).replace("/", "_") or "recipe"
    return Path(work_dir) / scene / "vlm" / row.system / (changes + ("" if row.fraction == 0.1 else
                                                                     f"-frac{row.fraction:g}"))


def _current(stem: Path, system: str, scene: str, seed: int, overrides: dict[str, Any]) -> dict[str, Any] | None:
    """The record at `stem` if it was trained with the current recipe (else None: it must train again)."""
    record = RecordStore.load(stem)  # the record beside the run folder, kept when the folder is not
    s = get_system(system)
    if record is None or recipe_changes(record.get("recipe"), s.flat_recipe(s.recipe(scene, seed=seed,
                                                                                       **overrides))):
        return None
    return record


def _variant_jobs(scene: Scene, row: Row, seeds: Sequence[int], work_dir: Path, cache_dir: Path | None
                  ) -> tuple[list[Path], list[Job]]:
    """Our recipe with the row's config changes, per seed on the comparison's split: the record stems, and the jobs
    for the seeds without a record of the current recipe."""
    stems = [variant_dir(work_dir, scene.name, row) / f"seed{seed}" for seed in seeds]
    jobs = [Job(stem, row.system, seed, f"{row.label}, seed {seed}",
                {"fraction": row.fraction, "cache_dir": cache_dir, **dict(row.overrides)})
            for stem, seed in zip(stems, seeds, strict=True)
            if _current(stem, row.system, scene.name, seed, dict(row.overrides)) is None]
    return stems, jobs


def run_rows(scene: Scene, rows: Sequence[Row], seeds: Sequence[int], *, work_dir: Path, compare_dir: Path,
             epochs: dict[str, int] | None = None, skip: Sequence[str] = (), device: str = "cpu",
             cache_dir: Path | None = None, progress: bool = True, train_missing: bool = True,
             log: Callable[[str], None] = print, executor: str = "local", address: str | None = None,
             workers: int | None = None) -> list[dict[str, Any]]:
    """Per row: its per-seed records (trained where missing) and a status ("" when every seed is there).

    Every row's missing runs are planned first and trained together (`runner.execute`: one after the other, or
    side by side on Ray), then each row collects its records."""
    for row in rows:
        get_system(row.system)
    plans: dict[int, list[Path]] = {}
    jobs: list[Job] = []
    for k, row in enumerate(rows):
        if row.system in skip:
            continue
        if row.overrides:
            plans[k], todo = _variant_jobs(scene, row, seeds, work_dir, cache_dir)
        else:
            plans[k], todo = plan_comparison(scene, [row.system], seeds, fraction=row.fraction,
                                             epochs={n: e for n, e in (epochs or {}).items() if n == row.system},
                                             work_dir=compare_dir, cache_dir=cache_dir, log=log,
                                             train_missing=train_missing)
        jobs += todo if train_missing else []
    unique = list({job.stem: job for job in jobs}.values())  # rows may share a comparison pair
    execute(unique, scene, executor=executor, address=address, workers=workers, device=device, progress=progress,
            log_line=log)
    out = []
    for k, row in enumerate(rows):
        if row.system in skip:
            out.append({"row": row, "records": [], "status": "skipped here (--skip)"})
            continue
        if row.overrides:
            found = [_current(stem, row.system, scene.name, seed, dict(row.overrides))
                     for stem, seed in zip(plans[k], seeds, strict=True)]
        else:
            found = [RecordStore.load(stem) for stem in plans[k]]
        records = [r for r in found if r is not None]
        status = ""
        encoder = dict(row.overrides).get("text.encoder")
        if not records and encoder is not None and not encoder_available(encoder):
            status = "not available here"
        if not status and len(records) < len(seeds):
            status = "not run yet" if not records else f"{len(records)} of {len(seeds)} seeds"
        out.append({"row": row, "records": records, "status": status})
    return out


# --- tables ------------------------------------------------------------------------------------------------------
def _stats(records: Sequence[dict[str, Any]], key: str) -> tuple[float, float]:
    return mean_std([r[key] for r in records]) if records else (float("nan"), float("nan"))


def summarise_rows(results: Sequence[dict[str, Any]], scene: str) -> list[dict[str, Any]]:
    table = []
    for res in results:
        row, recs = res["row"], res["records"]
        paper = (paper_numbers(row.system, scene) if not row.overrides and row.fraction == 0.1 and row.paper_table1
                 else {})
        t: dict[str, Any] = {"label": row.label, "system": row.system, "series": row.series, "x": row.x,
                             "fraction": row.fraction, "changes": ", ".join(f"{k}={v}" for k, v in row.overrides),
                             "seeds": " ".join(str(r["seed"]) for r in recs), "status": res["status"],
                             "machines": sorted({r.get("machine") or "(not recorded)" for r in recs}),
                             "epochs": recs[0]["epochs"] if recs else None,
                             "paper_epochs": recs[0]["paper_epochs"] if recs else None,
                             "paper_oa": row.paper_oa if row.paper_oa is not None else paper.get("paper_oa"),
                             "paper_kappa": row.paper_kappa if row.paper_kappa is not None
                             else paper.get("paper_kappa")}
        for key in ("oa", "aa", "kappa", "train_s"):
            t[f"{key}_mean"], t[f"{key}_std"] = _stats(recs, key)
        table.append(t)
    return table


def check_findings(table: Sequence[dict[str, Any]], findings: Sequence[Finding]) -> list[str]:
    """One line per claim of the paper: confirmed, not confirmed (with the numbers), or not checkable here."""
    by = {t["label"]: t for t in table}
    lines = []
    for f in findings:
        rows = [by.get(label) for label in f.labels]
        if any(r is None or not r["seeds"] for r in rows):
            lines.append(f"- Paper: {f.claim}. Not checkable here: a row has no measurement.")
            continue
        reduced = [f"{r['label']} ran {r['epochs']} of {r['paper_epochs']} epochs" for r in rows  # type: ignore[index]
                   if not full_budget(r)]
        if reduced:
            lines.append(f"- Paper: {f.claim}. Not tested yet: {'; '.join(reduced)} (no full-budget record).")
            continue
        oa = [r["oa_mean"] for r in rows]  # type: ignore[index]
        numbers = ", ".join(f"{label} {v:.2f}" for label, v in zip(f.labels, oa, strict=True))
        ok = all(a > b for a, b in itertools.pairwise(oa)) if f.kind == "order" else oa[0] > max(oa[1:])
        pairs = list(itertools.pairwise(rows)) if f.kind == "order" else [(rows[0], r) for r in rows[1:]]
        close = [f"{a['label']} vs {b['label']}" for a, b in pairs  # type: ignore[index]
                 if abs(a["oa_mean"] - b["oa_mean"]) < max(a.get("oa_std", 0.0), b.get("oa_std", 0.0))]
        lines.append(f"- Paper: {f.claim}. {'Confirmed' if ok else '**Not confirmed**'} here ({numbers})."
                     + (f" Within one std over seeds, so not resolved by these seeds: {'; '.join(close)}."
                        if close else ""))
    return lines


def _epochs(t: dict[str, Any]) -> str:
    if t["epochs"] is None:
        return "–"
    return str(t["epochs"]) if full_budget(t) else f"{t['epochs']} ({t['paper_epochs']})"


def _cell(mean: float, std: float) -> str:
    return "–" if np.isnan(mean) else f"{mean:.2f} ± {std:.2f}"


def markdown(exp: Experiment, table: Sequence[dict[str, Any]], *, scene: str, command: str, seeds: Sequence[int],
             extra: Sequence[str] = ()) -> str:
    measured_on = "; ".join(sorted({str(m) for t in table for m in t["machines"]})) or machine()
    lines = [
        f"# {exp.title} ({exp.source}), {scene}", "",
        f"Command: `{command}`", "",
        f"Machine: {measured_on}. Seeds asked: {' '.join(map(str, seeds))}; each seed is one random split (the share "
        "of labelled pixels per class in the row) shared by every row. OA, AA, κ (×100) are mean ± std (population) "
        "over the seeds each row lists; train s is the mean training time. The `paper` columns are the numbers "
        "printed in the paper (bge-large-en-v1.5 text encoder, its hardware), never measured here; ours use the "
        "recipe's text encoder unless the row changes it. Rows that ran fewer epochs than their paper are not results: "
        "they sit apart, in the last table, and no finding is read from them.", "",
        *[f"- {n}" for n in exp.notes],
        *check_findings(table, exp.findings), "",
        "| row | changes to the recipe | epochs (paper's) | seeds | OA | AA | κ | train s | paper OA | paper κ "
        "| status |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    head = lines[-2:]

    def row(t: dict[str, Any]) -> str:
        paper_oa = "–" if t["paper_oa"] is None else f"{t['paper_oa']:.2f}"
        paper_k = "–" if t["paper_kappa"] is None else f"{t['paper_kappa']:.2f}"
        train_s = "–" if np.isnan(t["train_s_mean"]) else f"{t['train_s_mean']:.1f}"
        return (f"| {t['label']} | {t['changes'] or '–'} | {_epochs(t)} | {t['seeds'] or '–'} "
                f"| {_cell(t['oa_mean'], t['oa_std'])} | {_cell(t['aa_mean'], t['aa_std'])} "
                f"| {_cell(t['kappa_mean'], t['kappa_std'])} | {train_s} | {paper_oa} | {paper_k} "
                f"| {t['status'] or 'done'} |")

    lines += [row(t) for t in table if full_budget(t)]
    if reduced := [t for t in table if not full_budget(t)]:
        lines += ["", "## Reduced budget, not comparable", "",
                  "These rows ran fewer epochs than their paper (its count in brackets): they show that the code "
                  "runs, not what the system can do.", "", *head, *[row(t) for t in reduced]]
    return "\n".join([*lines, *extra]) + "\n"


CSV_COLUMNS = ["label", "system", "changes", "fraction", "epochs", "seeds", "status", "oa_mean", "oa_std", "aa_mean",
               "aa_std", "kappa_mean", "kappa_std", "train_s_mean", "paper_oa", "paper_kappa"]


def write_csv(table: Sequence[dict[str, Any]], path: Path) -> None:
    import csv

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for t in table:
            w.writerow(["" if t[c] is None or (isinstance(t[c], float) and np.isnan(t[c])) else
                        (f"{t[c]:.4f}" if isinstance(t[c], float) else t[c]) for c in CSV_COLUMNS])


def output_stem(out_dir: Path, name: str, scene: str) -> Path:
    """results/<name> on Indian Pines (the paper's tables), results/<name>_<scene> on any other scene."""
    return Path(out_dir) / (name if scene == "indian_pines" else f"{name}_{scene}")


def reproduce(name: str, scene: Scene, seeds: Sequence[int], *, out_dir: Path, work_dir: Path, compare_dir: Path,
              command: str, epochs: dict[str, int] | None = None, skip: Sequence[str] = (), device: str = "cpu",
              cache_dir: Path | None = None, progress: bool = True, train_missing: bool = True,
              log: Callable[[str], None] = print, executor: str = "local", address: str | None = None,
              workers: int | None = None) -> list[Path]:
    """Run experiment `name` (training what is missing) and write its md/csv/png; return the paths written.
    `executor`, `address`, `workers`: where the missing runs train (`runner.execute`)."""
    exp = EXPERIMENTS.get(name)
    stem = output_stem(out_dir, name, scene.name)
    stem.parent.mkdir(parents=True, exist_ok=True)
    kw = {"work_dir": work_dir, "compare_dir": compare_dir, "epochs": epochs, "skip": skip, "device": device,
          "cache_dir": cache_dir, "progress": progress, "train_missing": train_missing, "log": log,
          "executor": executor, "address": address, "workers": workers}
    t0 = time.perf_counter()
    if exp.figure is not None:
        paths = exp.figure(scene, seeds, stem=stem, command=command, **kw)
        log(f"{name}: {time.perf_counter() - t0:.0f} s")
        return paths
    results = run_rows(scene, exp.rows(scene.name), seeds, **kw)
    table = summarise_rows(results, scene.name)
    md, csv_path, png = stem.with_suffix(".md"), stem.with_suffix(".csv"), stem.with_suffix(".png")
    md.write_text(markdown(exp, table, scene=scene.name, command=command, seeds=seeds))
    write_csv(table, csv_path)
    from .plots import experiment_figure

    shown = [t if full_budget(t) else {**t, "oa_mean": float("nan"), "oa_std": float("nan")} for t in table]
    fig = experiment_figure(shown, title=f"{scene.name}: {exp.title} ({exp.source})", x_label=exp.x_label,
                            log_x=exp.log_x)
    fig.savefig(png, dpi=150)
    import matplotlib.pyplot as plt

    plt.close(fig)
    log(f"{name}: {time.perf_counter() - t0:.0f} s")
    return [md, csv_path, png]

