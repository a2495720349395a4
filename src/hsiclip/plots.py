"""Figures. Each function returns a matplotlib Figure and never calls show()."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch


def class_colors(num_classes: int) -> np.ndarray:
    """(C + 1, 4) RGBA: black for unlabelled (0), then distinct colours for classes 1..C."""
    base = plt.get_cmap("tab20")(np.linspace(0, 1, 20))
    if num_classes > 20:
        base = plt.get_cmap("gist_ncar")(np.linspace(0.05, 0.95, num_classes))
    order = np.r_[0:20:2, 1:20:2] if num_classes <= 20 else np.arange(num_classes)
    colors = base[order[:num_classes]] if num_classes <= 20 else base
    return np.vstack([[0, 0, 0, 1], colors])


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
    named in the caption. Error bars are the std over seeds; labels of nearby bubbles are stacked, not overlapped.
    """
    shown = sorted((r for r in rows if r.get("flops")), key=lambda r: -r["oa_mean"])
    skipped = [r["label"] for r in rows if not r.get("flops")]
    fig, ax = plt.subplots(figsize=(9.0, 5.8), constrained_layout=True)
    biggest = max((r["trainable_params"] for r in shown), default=1)
    area = lambda n: 25 + 2500 * n / biggest  # noqa: E731  (marker area in pt^2, ∝ parameters)
    colors = plt.get_cmap("tab20")(np.linspace(0, 1, 20))
    placed: list[tuple[float, float, int]] = []  # (log10 GFLOPs, OA, label offset in points) of labels so far
    for i, r in enumerate(shown):
        x, y = r["flops"] / 1e9, r["oa_mean"]
        ours = r["model"] == "ours"
        ax.errorbar(x, y, yerr=r["oa_std"], fmt="none", ecolor="0.4", elinewidth=1, capsize=2, zorder=2)
        ax.scatter(x, y, s=area(r["trainable_params"]), color="crimson" if ours else colors[i % 20], alpha=0.55,
                   edgecolor="black", linewidth=1.5 if ours else 0.5, zorder=3)
        near = [off for lx, ly, off in placed if abs(lx - np.log10(x)) < 0.35 and abs(ly - y) < 4]
        offset = 6 if not near else min(near) - 11  # stack below the labels already there
        placed.append((float(np.log10(x)), y, offset))
        ax.annotate(r["label"], (x, y), xytext=(8, offset), textcoords="offset points", fontsize=8,
                    fontweight="bold" if ours else "normal", zorder=4)
    ax.set_xscale("log")
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
