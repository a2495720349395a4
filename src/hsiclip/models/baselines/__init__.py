"""Comparison systems of the paper (Table 1 and Table 8), each with the settings its own paper or code fixes.

Every baseline is a module on (B, w, w, bands) windows, like ours, returning (B, num_classes) logits, and a
`BaselineSpec` that records its window, PCA size and training settings with where they come from. Each baseline
uses the input it was designed for, not ours: `pca_components` 0 means every band, min-max scaled over the cube
(the DeepHyperX toolbox's input), otherwise that many whitened PCA components. A baseline that is not trained by
back-propagating cross-entropy (Forward-Forward) brings its own `fit`, with the signature of `engine.train_model`
minus the loss.
"""

from __future__ import annotations

from . import (  # each registers itself
    cnn2d,
    cnn3d,
    dctn,
    forward_forward,
    gaf_nau,
    hit,
    hybridsn,
    morphformer,
    ssftt,
    sstmnet,
    vision_only,
    vit,
)
from .spec import BASELINES, BaselineSpec, get_baseline, register_baseline

__all__ = ["BASELINES", "BaselineSpec", "cnn2d", "cnn3d", "dctn", "forward_forward", "gaf_nau", "get_baseline", "hit",
           "hybridsn", "morphformer", "register_baseline", "ssftt", "sstmnet", "vision_only", "vit"]
