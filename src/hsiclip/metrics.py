"""Classification metrics from the confusion matrix: OA, AA, Cohen's kappa, per-class accuracy (percentages)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Labels 0..C-1 -> {oa, aa, kappa, per_class, confusion}; rows of `confusion` are true classes.

    AA averages the per-class accuracies of the classes present in `y_true`; kappa is Cohen's (in %).
    """
    return confusion_metrics(confusion_matrix(y_true, y_pred, labels=np.arange(num_classes)))


def confusion_metrics(cm: np.ndarray) -> dict[str, Any]:
    """The same metrics from a (C, C) confusion matrix, e.g. one summed over the folds of a cross-validation."""
    cm = np.asarray(cm)
    n = cm.sum()
    support = cm.sum(axis=1)
    diag = np.diag(cm)
    per_class = np.where(support > 0, diag / np.maximum(support, 1), np.nan)
    oa = diag.sum() / n
    expected = (support * cm.sum(axis=0)).sum() / n**2
    kappa = (oa - expected) / (1 - expected) if expected < 1 else 1.0
    return {
        "oa": float(100 * oa),
        "aa": float(100 * np.nanmean(per_class)),
        "kappa": float(100 * kappa),
        "per_class": [None if np.isnan(a) else float(100 * a) for a in per_class],
        "confusion": cm.astype(int).tolist(),
    }
