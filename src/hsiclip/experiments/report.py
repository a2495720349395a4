"""Comparison records -> one row per system (mean ± std over seeds), Markdown and CSV tables, the trade-off figure.

The paper's own numbers (`paper_results.toml`) sit in separate `paper_*` columns and never replace a measured one.
"""

from __future__ import annotations

import csv
import functools
import math
import tomllib
import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

CSV_COLUMNS = ["model", "label", "protocol", "seeds", "epochs", "paper_epochs", "oa_mean", "oa_std", "aa_mean",
               "aa_std", "kappa_mean", "kappa_std", "trainable_params", "flops", "train_s", "infer_s",
               "paper_table", "paper_oa", "paper_kappa", "paper_flops_g", "paper_params_mb", "paper_latency_s",
               "budget"]


def full_budget(row: dict[str, Any]) -> bool:
    """Whether a row (or record) ran at least its paper's epochs (a system without epochs always does)."""
    return row.get("epochs") is None or not row.get("paper_epochs") or row["epochs"] >= row["paper_epochs"]


@functools.cache
def _paper_table() -> dict[str, Any]:
    return tomllib.loads(resources.files("hsiclip").joinpath("paper_results.toml").read_text())


def paper_numbers(name: str, scene: str) -> dict[str, Any]:
    """The paper's printed numbers for system `name` on `scene` (empty where it prints none)."""
    entry = _paper_table().get(name, {})
    on_scene = entry.get(scene, {})
    return {"paper_table": entry.get("table") if on_scene else None, "paper_oa": on_scene.get("oa"),
            "paper_kappa": on_scene.get("kappa"), "paper_flops_g": entry.get("flops_g"),
            "paper_params_mb": entry.get("params_mb"), "paper_latency_s": entry.get("latency_s")}


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std())  # population std over seeds


def summarise(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per system, in the order the records first name them; OA/AA/κ and times are means over seeds."""
    rows = []
    for name in dict.fromkeys(r["model"] for r in records):
        rs = sorted((r for r in records if r["model"] == name), key=lambda r: r["seed"])
        first = rs[0]
        row: dict[str, Any] = {"model": name, "label": first["label"], "protocol": first["protocol"],
                               "seeds": " ".join(str(r["seed"]) for r in rs), "n_seeds": len(rs),
                               "epochs": first["epochs"], "paper_epochs": first["paper_epochs"]}
        for key in ("oa", "aa", "kappa"):
            row[f"{key}_mean"], row[f"{key}_std"] = mean_std([r[key] for r in rs])
        row["trainable_params"], row["flops"] = first["trainable_params"], first["flops"]
        row["train_s"] = float(np.mean([r["train_s"] for r in rs]))
        row["infer_s"] = float(np.mean([r["infer_s"] for r in rs]))
        with warnings.catch_warnings():  # a class with no test pixel in any seed stays NaN ("–" in the tables)
            warnings.simplefilter("ignore", RuntimeWarning)
            per_class = np.nanmean(np.asarray([r["per_class"] for r in rs], dtype=np.float64), axis=0)
        row["per_class"] = per_class.tolist()
        row["class_names"] = first["class_names"]
        row.update(paper_numbers(name, first["scene"]))
        row["budget"] = "full" if full_budget(row) else "reduced"
        rows.append(row)
    return rows


def _fmt(value: Any, spec: str = ".2f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, spec)


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    classes = rows[0]["class_names"] if rows else []
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS + [f"acc_{c}" for c in classes])
        for row in rows:
            cells = [row[c] for c in CSV_COLUMNS] + row["per_class"]
            writer.writerow(["" if v is None else (f"{v:.4f}" if isinstance(v, float) else v) for v in cells])


def _above_ours(rows: Sequence[dict[str, Any]]) -> list[str]:
    """A plain statement of every system whose mean OA is above the paper recipe's in this table."""
    ours = next((r for r in rows if r["model"] == "ours"), None)
    if ours is None:
        return []
    above = sorted((r for r in rows if r["oa_mean"] > ours["oa_mean"]), key=lambda r: -r["oa_mean"])
    if not above:
        return [f"- No system's mean OA is above ours (paper recipe, {ours['oa_mean']:.2f})."]
    return [f"- Measured above ours (paper recipe, OA {ours['oa_mean']:.2f}): "
            + "; ".join(f"{r['label']} {r['oa_mean']:.2f} (+{r['oa_mean'] - ours['oa_mean']:.2f})" for r in above)
            + "."]


def _epochs(r: dict[str, Any]) -> str:
    if r["epochs"] is None:
        return "–"
    return f"{r['epochs']}" if full_budget(r) else f"**{r['epochs']}** ({r['paper_epochs']})"


def markdown(rows: Sequence[dict[str, Any]], *, scene: str, protocol: str, command: str, machine: str,
             notes: Sequence[str] = ()) -> str:
    """The comparison as Markdown: the main table of the rows that ran their full budget, their per-class accuracy,
    then the rows that did not, apart under a title that says they are not comparable."""
    every = rows
    rows = [r for r in every if full_budget(r)]
    reduced = [r for r in every if not full_budget(r)]
    best_oa = max((r["oa_mean"] for r in rows), default=None)
    lines = [
        f"# Comparison on {scene} ({protocol} protocol)", "",
        f"Command: `{command}`", "",
        f"Machine: {machine}. Every measured column comes from that one command on this machine; OA, AA and κ "
        "(×100) are mean ± std (population) over the seeds listed; parameters count trainable weights; FLOPs are "
        "per test sample (one forward pass, PyTorch's FLOP counter, 2 per multiply-add); train and test-inference "
        "times are seconds, means over seeds. The `paper` columns are the numbers printed in the paper under "
        "reproduction (Table 1; vision-only from Table 7; GAF-NAU and Forward-Forward from Table 8), never measured "
        "here. `epochs` is what each row ran here: only the rows that ran their paper's count are in this table, the "
        "per-class table and the OA-FLOPs figure; the others are listed apart at the end, not comparable. The "
        "paper's FLOPs column appears to count multiply-adds (half of PyTorch's count) and its \"Params (MB)\" "
        "column millions of parameters.", "",
        *[f"- {n}" for n in notes], *_above_ours(rows), *([""] if notes or _above_ours(rows) else []),
        "| system | epochs (paper's) | seeds | OA | AA | κ | trainable params | GFLOPs | train s | infer s "
        "| paper OA | paper κ | paper GFLOPs | paper params (MB) | paper latency s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        oa = f"{r['oa_mean']:.2f} ± {r['oa_std']:.2f}"
        lines.append(
            f"| {r['label']} | {_epochs(r)} | {r['seeds']} | {f'**{oa}**' if r['oa_mean'] == best_oa else oa} "
            f"| {r['aa_mean']:.2f} ± {r['aa_std']:.2f} | {r['kappa_mean']:.2f} ± {r['kappa_std']:.2f} "
            f"| {_fmt(r['trainable_params'], ',')} | {_fmt(r['flops'] and r['flops'] / 1e9, '.4f')} "
            f"| {r['train_s']:.1f} | {r['infer_s']:.2f} | {_fmt(r['paper_oa'])} | {_fmt(r['paper_kappa'])} "
            f"| {_fmt(r['paper_flops_g'])} | {_fmt(r['paper_params_mb'])} | {_fmt(r['paper_latency_s'])} |")
    if not rows:
        lines.append("| *no row has run its full budget yet* |" + " |" * 14)
    classes = every[0]["class_names"]
    if rows:
        lines += ["", "## Per-class accuracy (%, mean over seeds)", "",
                  "| class | " + " | ".join(r["label"] for r in rows) + " |",
                  "| --- |" + " --- |" * len(rows)]
        for i, c in enumerate(classes):
            lines.append(f"| {c} | " + " | ".join(_fmt(r["per_class"][i], ".1f") for r in rows) + " |")
    if reduced:
        lines += ["", "## Reduced budget, not comparable", "",
                  "These rows ran fewer epochs than their papers (in brackets): they show that the code runs, not what "
                  "the systems can do, and are in neither the table above nor the figure.", "",
                  "| system | epochs (paper's) | seeds | OA | AA | κ | train s | infer s |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in reduced:
            lines.append(f"| {r['label']} | {_epochs(r)} | {r['seeds']} | {r['oa_mean']:.2f} ± {r['oa_std']:.2f} "
                         f"| {r['aa_mean']:.2f} ± {r['aa_std']:.2f} | {r['kappa_mean']:.2f} ± {r['kappa_std']:.2f} "
                         f"| {r['train_s']:.1f} | {r['infer_s']:.2f} |")
    return "\n".join(lines) + "\n"


def protocol_notes(records: Sequence[dict[str, Any]]) -> list[str]:
    """What the protocol is, and the test pixels and classes it leaves, for the table's notes."""
    from ..data.protocols import PROTOCOLS

    tag = records[0]["protocol"]
    lines = [f"Protocol `{tag}`: {PROTOCOLS.get(tag.split('-')[0]).description}."]
    by_seed = {r["seed"]: r for r in records}
    counts = ", ".join(f"seed {s}: {r['n_train']} / {r['n_test']}" for s, r in sorted(by_seed.items()))
    lines.append(f"Training / test pixels per seed: {counts}.")
    missing = sorted({c for r in records for c in r.get("classes_missing_in_test", [])})
    if missing:
        lines.append(f"Classes with no test pixel in at least one seed (their whole extent lies within the margin "
                     f"of their training region; AA averages over the classes present): {', '.join(missing)}.")
    return lines


def protocols_markdown(paper: Sequence[dict[str, Any]], leakfree: Sequence[dict[str, Any]], *, command: str,
                       machine: str) -> str:
    """Per system present under both protocols: OA and κ on the paper's random split and on the leak-free one."""
    a, b = {r["model"]: r for r in summarise(paper)}, {r["model"]: r for r in summarise(leakfree)}
    both = [m for m in b if m in a]
    reduced = [m for m in both if not (full_budget(a[m]) and full_budget(b[m]))]
    both = sorted((m for m in both if m not in reduced), key=lambda m: -b[m]["oa_mean"])
    scene = leakfree[0]["scene"]
    lines = [f"# The paper's protocol against a leak-free one, {scene}", "", f"Command: `{command}`", "",
             f"Machine: {machine}. OA and κ (×100): mean ± std (population) over the seeds listed. "
             f"{protocol_notes(paper)[0]} {protocol_notes(leakfree)[0]} "
             "The loss is how much OA each system gives up when test windows no longer contain training pixels "
             "and nothing is fitted on test pixels; rows are sorted by leak-free OA. Only systems that ran their "
             "paper's epochs under both protocols are compared; the others are named at the end.", "",
             *[f"- {n}" for n in protocol_notes(leakfree)[1:]], "",
             "| system | epochs | seeds (paper / leak-free) | OA, paper | OA, leak-free | OA lost | κ, paper "
             "| κ, leak-free | AA, leak-free |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for m in both:
        p, q = a[m], b[m]
        lines.append(f"| {q['label']} | {_epochs(q)} | {p['seeds']} / {q['seeds']} "
                     f"| {p['oa_mean']:.2f} ± {p['oa_std']:.2f} | {q['oa_mean']:.2f} ± {q['oa_std']:.2f} "
                     f"| {p['oa_mean'] - q['oa_mean']:.2f} "
                     f"| {p['kappa_mean']:.2f} ± {p['kappa_std']:.2f} | {q['kappa_mean']:.2f} ± {q['kappa_std']:.2f} "
                     f"| {q['aa_mean']:.2f} ± {q['aa_std']:.2f} |")
    if reduced:
        lines += ["", "Not compared (a reduced budget under at least one protocol, epochs run / the paper's): "
                  + "; ".join(f"{a[m]['label']} {_epochs(a[m])} / {_epochs(b[m])}" for m in reduced) + "."]
    return "\n".join(lines) + "\n"


def write_report(records: Sequence[dict[str, Any]], out_dir: Path, *, command: str, machine: str,
                 notes: Sequence[str] = ()) -> list[Path]:
    """Write compare_<scene>[_<protocol>].md/.csv/.png from the records; return the paths written.

    The PNG (OA against FLOPs) is written only when a full-budget row has a FLOP count: a table of pixel
    classifiers alone has nothing to place on that axis.
    """
    import matplotlib.pyplot as plt

    from .plots import tradeoff_figure

    rows = summarise(records)
    scene, protocol = records[0]["scene"], records[0]["protocol"]
    notes = [*protocol_notes(records), *notes]
    stem = Path(out_dir) / (f"compare_{scene}" + ("" if protocol == "paper" else f"_{protocol.split('-')[0]}"))
    stem.parent.mkdir(parents=True, exist_ok=True)
    md, csv_path, png = stem.with_suffix(".md"), stem.with_suffix(".csv"), stem.with_suffix(".png")
    md.write_text(markdown(rows, scene=scene, protocol=protocol, command=command, machine=machine, notes=notes))
    write_csv(rows, csv_path)
    rows = [r for r in rows if full_budget(r)]  # a reduced budget is no result to place on the figure
    if not any(r.get("flops") for r in rows):
        png.unlink(missing_ok=True)  # a figure left by an earlier run with other systems would no longer match
        return [md, csv_path]
    fig = tradeoff_figure(rows, title=f"{scene}, {protocol} protocol: OA against FLOPs per sample")
    fig.savefig(png, dpi=150)
    plt.close(fig)
    return [md, csv_path, png]
