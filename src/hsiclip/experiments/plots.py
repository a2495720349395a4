"""Figures. Each function returns a matplotlib Figure and never calls show()."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..predict import class_colors

if TYPE_CHECKING:
    from ..data.scenes import Scene
    from ..run import Run


def classification_map_figure(ground_truth: np.ndarray, prediction: np.ndarray, class_names: list[str],
                              title: str = "", oa: float | None = None) -> Figure:
    """Ground truth, full-scene prediction and the prediction on labelled pixels, with a class legend."""
    c = len(class_names)
    cmap = ListedColormap(class_colors(c))
    masked = np.where(ground_truth > 0, prediction, 0)
    h, w = ground_truth.shape
    panel_w = 4.0 * min(1.6, max(0.6, w / h))
    fig, axes = plt.subplots(1, 3, figsize=(3 * panel_w + 3.2, 4.6), constrained_layout=True)
    labelled = "prediction on labelled pixels" + (f" (test OA {oa:.2f}%)" if oa is not None else "")
    for ax, img, name in zip(axes, (ground_truth, prediction, masked),
                             ("ground truth", "prediction, whole scene", labelled), strict=True):
        ax.imshow(img, cmap=cmap, vmin=0, vmax=c, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Patch(color=cmap(i + 1), label=f"{i + 1} {n}") for i, n in enumerate(class_names)]
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def tradeoff_figure(rows: list[dict], title: str = "") -> Figure:
    """The paper's Figure 1b: mean OA against FLOPs per sample (log scale), bubble area ∝ trainable parameters.

    `rows` are comparison rows (`report.summarise`); rows without FLOPs (the pixel classifiers) are left out and
    named in the caption. Error bars are the std over seeds; labels of nearby bubbles are stacked, not overlapped;
    a row that ran fewer epochs than its paper says so in its label.
    """
    shown = sorted((r for r in rows if r.get("flops")), key=lambda r: -r["oa_mean"])
    skipped = [r["label"] for r in rows if not r.get("flops")]
    fig, ax = plt.subplots(figsize=(9.0, 5.8), constrained_layout=True)
    biggest = max((r["trainable_params"] for r in shown), default=1)
    area = lambda n: 25 + 2500 * n / biggest  # noqa: E731  (marker area in pt^2, ∝ parameters)
    colors = plt.get_cmap("tab20")(np.linspace(0, 1, 20))
    # labels so far: (log10 GFLOPs where the text starts, where it ends, OA, offset in points); a label runs right
    # of its bubble, about 0.03 decades per character on this figure's axis
    placed: list[tuple[float, float, float, int]] = []
    lo = min((r["oa_mean"] - r["oa_std"] for r in shown), default=0.0)
    hi = max((r["oa_mean"] + r["oa_std"] for r in shown), default=1.0)
    line = 0.035 * 1.1 * max(hi - lo, 1.0)  # one label's height (11 pt) in OA units on this figure's y axis
    for i, r in enumerate(shown):
        x, y = r["flops"] / 1e9, r["oa_mean"]
        ours = r["model"] == "ours"
        ax.errorbar(x, y, yerr=r["oa_std"], fmt="none", ecolor="0.4", elinewidth=1, capsize=2, zorder=2)
        ax.scatter(x, y, s=area(r["trainable_params"]), color="crimson" if ours else colors[i % 20], alpha=0.55,
                   edgecolor="black", linewidth=1.5 if ours else 0.5, zorder=3)
        budget = reduced_budget(r, unit="ep.")
        label = r["label"] + (f" ({budget})" if budget else "")
        x0 = float(np.log10(x))
        x1 = x0 + 0.05 + 0.03 * len(label)
        near = [off for a, b, ly, off in placed if a < x1 and x0 < b and abs(ly - y) < line]
        offset = 6 if not near else min(near) - 11  # stack below the labels already there
        placed.append((x0, x1, y, offset))
        ax.annotate(label, (x, y), xytext=(8, offset), textcoords="offset points", fontsize=8,
                    fontweight="bold" if ours else "normal", zorder=4, va="center",
                    arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.6} if near else None)
    ax.set_xscale("log")
    if shown:  # room on the right for the labels of the costliest systems
        lo, hi = ax.get_xlim()
        ax.set_xlim(lo, hi * 4)
    ax.set_xlabel("GFLOPs per sample (log scale, PyTorch's counter: 2 per multiply-add)")
    ax.set_ylabel("overall accuracy (%), mean ± std over seeds")
    ax.grid(True, which="both", alpha=0.3)
    for n in (1e5, 1e6, 1e7, 5e7):  # bubble-size key
        if n <= biggest:
            ax.scatter([], [], s=area(n), color="0.8", edgecolor="black", linewidth=0.5, label=f"{n / 1e6:g}M")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, labelspacing=2.8, borderpad=1.2,
              handletextpad=2.0, title="trainable\nparameters", title_fontsize=8, frameon=False)
    caption = title + (f"\n(not shown, no FLOP count: {', '.join(skipped)})" if skipped else "")
    if caption:
        ax.set_title(caption, fontsize=10)
    return fig


def experiment_figure(table: list[dict], title: str = "", x_label: str | None = None, log_x: bool = False) -> Figure:
    """An experiment's rows: OA (mean ± std over seeds) against a numeric x per series, or one bar per row; the
    paper's numbers as hollow markers. Rows without a measurement are shown by their paper marker only."""
    fig, ax = plt.subplots(figsize=(8.5, 4.8), constrained_layout=True)
    has = [t for t in table if not np.isnan(t["oa_mean"])]
    if x_label is not None:
        colors = plt.get_cmap("tab10")
        for i, series in enumerate(dict.fromkeys(t["series"] for t in table)):
            rows = [t for t in table if t["series"] == series]
            got = [t for t in rows if not np.isnan(t["oa_mean"])]
            if got:
                budget = ", " + reduced_budget(got[0]) if reduced_budget(got[0]) else ""
                ax.errorbar([t["x"] for t in got], [t["oa_mean"] for t in got], yerr=[t["oa_std"] for t in got],
                            marker="o", capsize=3, color=colors(i), label=f"{series} (measured{budget})")
            paper = [t for t in rows if t["paper_oa"] is not None]
            if paper:
                ax.plot([t["x"] for t in paper], [t["paper_oa"] for t in paper], linestyle="--", marker="o",
                        markerfacecolor="none", color=colors(i), alpha=0.7, label=f"{series} (paper)")
        if log_x:
            ax.set_xscale("log", base=2)
            xs = sorted({t["x"] for t in table})
            ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.set_xlabel(x_label)
    else:
        pos = np.arange(len(table))
        ax.bar(pos[[table.index(t) for t in has]], [t["oa_mean"] for t in has], yerr=[t["oa_std"] for t in has],
               capsize=4, color="steelblue", alpha=0.8, label="measured (mean ± std over seeds)")
        paper = [(i, t["paper_oa"]) for i, t in enumerate(table) if t["paper_oa"] is not None]
        if paper:
            ax.scatter(*zip(*paper, strict=True), marker="D", facecolor="none", edgecolor="crimson", s=60, zorder=3,
                       label="paper")
        for t in has:
            ax.annotate(f"{t['oa_mean']:.2f}", (table.index(t), t["oa_mean"] + t["oa_std"]), xytext=(0, 3),
                        textcoords="offset points", ha="center", fontsize=8)
        ax.set_xticks(pos, ["\n".join(_wrap(t["label"], 22) + [f"({b})" for b in [reduced_budget(t)] if b])
                            for t in table], fontsize=8)
    values = [t["oa_mean"] - t["oa_std"] for t in has] + [t["paper_oa"] for t in table if t["paper_oa"] is not None]
    if values:
        top = max([t["oa_mean"] + t["oa_std"] for t in has] + [t["paper_oa"] or 0 for t in table])
        ax.set_ylim(max(0.0, min(values) - 3), min(100.0, top + 1.5))
    if x_label is None:  # rows without a measurement say why, at the foot of their slot
        for i, t in enumerate(table):
            if np.isnan(t["oa_mean"]):
                ax.annotate(t["status"] or "not run", (i, ax.get_ylim()[0]), xytext=(0, 6), textcoords="offset points",
                            ha="center", fontsize=8, rotation=90, va="bottom", color="0.35")
    ax.set_ylabel("overall accuracy (%)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def reduced_budget(t: dict, unit: str = "epochs") -> str:
    """`N of M epochs` when a row ran fewer epochs than its paper's M, else ""."""
    e, paper = t.get("epochs"), t.get("paper_epochs")
    return f"{e} of {paper} {unit}" if e is not None and paper is not None and e < paper else ""


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [text]


def _class_legend(fig: Figure, class_names: list[str], extra: list[Patch] = ()) -> None:  # type: ignore[assignment]
    cmap = ListedColormap(class_colors(len(class_names)))
    handles = [Patch(color=cmap(i + 1), label=f"{i + 1} {n}") for i, n in enumerate(class_names)]
    fig.legend(handles=[*handles, *extra], loc="outside right center", fontsize=8, frameon=False)


def embeddings_figure(panels: list[dict], class_names: list[str], title: str = "") -> Figure:
    """UMAP panels: points coloured by true class, the class text prototypes as numbered stars."""
    colors = class_colors(len(class_names))[1:]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels) + 2.5, 6.0), constrained_layout=True,
                             squeeze=False)
    for ax, p in zip(axes[0], panels, strict=True):
        ax.scatter(p["xy"][:, 0], p["xy"][:, 1], c=colors[p["labels"]], s=3, alpha=0.6, linewidths=0)
        ax.scatter(p["protos"][:, 0], p["protos"][:, 1], c=colors[: len(p["protos"])], marker="*", s=320,
                   edgecolor="black", linewidth=1.0, zorder=3)
        for i, (x, y) in enumerate(p["protos"]):
            ax.annotate(str(i + 1), (x, y), xytext=(6, 6), textcoords="offset points", fontsize=8, fontweight="bold")
        ax.set_title(p["title"], fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("UMAP 1")
        ax.set_ylabel("UMAP 2")
    star = plt.Line2D([], [], marker="*", color="w", markeredgecolor="black", markersize=12, label="text prototype")
    _class_legend(fig, class_names, [star])  # type: ignore[list-item]
    if title:
        fig.suptitle(title)
    return fig


def landscape_figure(panels: list[dict], grid: np.ndarray, title: str = "") -> Figure:
    """Contour plots of loss surfaces over two directions, the trained weights marked at the centre."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 5.0), constrained_layout=True, squeeze=False)
    for ax, p in zip(axes[0], panels, strict=True):
        z = np.log10(np.maximum(p["surface"], 1e-6))
        cs = ax.contourf(grid, grid, z, levels=20, cmap="viridis")
        ax.contour(grid, grid, z, levels=20, colors="white", linewidths=0.4, alpha=0.6)
        ax.plot(0, 0, marker="x", color="red", markersize=10, mew=2, label="trained weights")
        fig.colorbar(cs, ax=ax, label="log10 training loss")
        ax.set_xlabel("α (direction 1)")
        ax.set_ylabel("β (direction 2)")
        ax.set_title(p["title"], fontsize=10)
        ax.set_aspect("equal")
        ax.legend(loc="upper right", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def maps_figure(ground_truth: np.ndarray, panels: list[dict], class_names: list[str], title: str = "") -> Figure:
    """The ground truth and one map per method (-1 = training pixel, white; 0 = unlabelled, black)."""
    c = len(class_names)
    cmap = ListedColormap(np.vstack([[1, 1, 1, 1], class_colors(c)]))  # -1 white, 0 black, 1..C classes
    n = len(panels) + 1
    cols = min(5 if n > 12 else 4, n)  # 13-15 panels fill three rows of five
    rows = -(-n // cols)
    h, w = ground_truth.shape
    size = 3.0 * min(1.6, max(0.6, w / h))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size + 3.0, rows * 3.4), constrained_layout=True,
                             squeeze=False)
    for ax, p in zip(axes.flat, [{"title": "ground truth", "map": ground_truth}, *panels], strict=False):
        if p["map"] is None:
            ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes, color="0.4")
        else:
            ax.imshow(p["map"], cmap=cmap, vmin=-1, vmax=c, interpolation="nearest")
        ax.set_title(p["title"], fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    _class_legend(fig, class_names, [Patch(facecolor="white", edgecolor="black", label="training pixel (not scored)")])
    if title:
        fig.suptitle(title)
    return fig


def write_map(run: Run, scene: Scene, path: Path, device: str = "cpu", progress: bool = True) -> Path:
    """Classify every pixel of `scene` with `run` and save the map beside the ground truth as a PNG."""
    pred, _ = run.predict(scene.cube, device=device, progress=progress)
    oa = None
    if run.split is not None:
        labels = scene.labels.reshape(-1)
        oa = float(100 * np.mean(pred.reshape(-1)[run.split.test] == labels[run.split.test]))
    seed = run.record["seed"] if run.record else run.metrics.get("seed", "?")
    fig = classification_map_figure(scene.labels, pred, list(run.class_names),
                                    title=f"{scene.name}: {run.system.name}, seed {seed}", oa=oa)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
