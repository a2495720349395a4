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
