"""Baselines trained on the same split and scored with the same metrics as ours (issue 3, in progress).

`train_baseline` is the cross-entropy path for a registered `BaselineSpec`: the seed's split (identical to the one
`hsiclip train --seed S` uses), the baseline's own PCA size and window, its own epochs, batch and learning rate.
The `hsiclip compare` command and its tables are built on it.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .config import TrainConfig
from .data.preprocess import SpectralPCA
from .data.scenes import Scene
from .data.splits import Split, random_split
from .data.windows import WindowSampler
from .efficiency import count_parameters, flops_per_sample
from .engine import predict, train_model
from .metrics import classification_metrics
from .models.baselines import get_baseline
from .registry import Registry

# The two classical rows users expect: per-pixel classifiers on whitened PCA spectra (no spatial window).
# Hyperparameters are chosen by 3-fold cross-validation on the training pixels only.
CLASSICAL_PCA = 30  # components kept for the pixel classifiers
CLASSICAL: Registry[Any] = Registry("classical model")


def _svm(seed: int) -> Any:
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    grid = {"C": [1, 10, 100, 1000], "gamma": ["scale", 0.01, 0.1]}
    return GridSearchCV(SVC(kernel="rbf"), grid, cv=3, n_jobs=1)


def _random_forest(seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1)


CLASSICAL.register("svm", _svm)
CLASSICAL.register("rf", _random_forest)


def baseline_input(cube: np.ndarray, pca_components: int, seed: int = 0) -> np.ndarray:
    """A baseline's input cube: `pca_components` whitened PCA components, or (0) every band min-max scaled."""
    if pca_components:
        return SpectralPCA.fit_cube(cube, pca_components, seed=seed).transform(cube)
    lo, hi = float(cube.min()), float(cube.max())
    return ((cube.astype(np.float32) - lo) / max(hi - lo, 1e-12)).astype(np.float32)


def train_baseline(name: str, scene: Scene, seed: int = 0, *, fraction: float = 0.1, split: Split | None = None,
                   epochs: int | None = None, device: str = "cpu", progress: bool = True) -> dict[str, Any]:
    """Train baseline `name` on `scene` and return test metrics, parameters, FLOPs per sample and timings.

    `epochs` overrides the paper's count (for reduced-epoch tables, which must say so).
    """
    spec = get_baseline(name)
    torch.manual_seed(seed)
    split = split or random_split(scene.labels, fraction=fraction, seed=seed, class_names=scene.class_names)
    cube = baseline_input(scene.cube, spec.pca_for(scene.name), seed)
    k = cube.shape[-1]
    sampler = WindowSampler(cube, spec.window, device)
    labels = scene.targets
    model = spec.build(k, len(scene.class_names), spec.window).to(device)
    cfg = TrainConfig(epochs=epochs or spec.epochs, batch_size=spec.batch_size, lr=spec.lr, seed=seed)
    if spec.fit is not None:
        result = spec.fit(model, sampler, split.train, labels[split.train], cfg, progress=progress)
    else:
        result = train_model(model, sampler, split.train, labels[split.train], cfg, F.cross_entropy,
                             progress=progress)
    t0 = time.perf_counter()
    pred, _ = predict(model, sampler, split.test, cfg.eval_batch_size, progress=progress, desc="test")
    infer_s = time.perf_counter() - t0
    metrics = classification_metrics(labels[split.test], pred, len(scene.class_names))
    metrics.update(model=name, seed=seed, epochs=cfg.epochs, trainable_params=count_parameters(model, trainable=True),
                   flops=flops_per_sample(model, torch.zeros(spec.window, spec.window, k, device=device)),
                   train_s=result.seconds, infer_s=infer_s)
    return metrics


def train_classical(name: str, scene: Scene, seed: int = 0, *, fraction: float = 0.1,
                    split: Split | None = None) -> dict[str, Any]:
    """An RBF SVM ("svm") or a random forest ("rf") on whitened PCA pixel spectra, scored like the others."""
    factory = CLASSICAL.get(name)
    split = split or random_split(scene.labels, fraction=fraction, seed=seed, class_names=scene.class_names)
    k = min(CLASSICAL_PCA, scene.cube.shape[-1])
    features = SpectralPCA.fit_cube(scene.cube, k, seed=seed).transform(scene.cube).reshape(-1, k)
    labels = scene.targets
    model = factory(seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # classes with 2 training pixels (IP's Oats) are fewer than the 3 CV folds
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        model.fit(features[split.train], labels[split.train])
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = model.predict(features[split.test])
    infer_s = time.perf_counter() - t0
    metrics = classification_metrics(labels[split.test], pred, len(scene.class_names))
    metrics.update(model=name, seed=seed, epochs=None, trainable_params=None, flops=None, train_s=train_s,
                   infer_s=infer_s)
    return metrics
