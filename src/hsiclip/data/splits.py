"""Seeded per-class train/test splits of the labelled pixels, stored as flat pixel indices."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError


@dataclass
class Split:
    train: np.ndarray  # (N_train,) flat pixel indices into the H*W grid, int64
    test: np.ndarray  # (N_test,)

    def save(self, path: Path) -> None:
        np.savez(path, train=self.train, test=self.test)

    @classmethod
    def load(cls, path: Path) -> Split:
        with np.load(path) as f:
            return cls(f["train"].astype(np.int64), f["test"].astype(np.int64))


def random_split(labels: np.ndarray, *, fraction: float = 0.1, count: int | None = None, seed: int = 0,
                 class_names: tuple[str, ...] | None = None) -> Split:
    """Per class, a seeded random `count` (or round(`fraction` * n), at least 1) labelled pixels for training.

    Every class keeps at least one training and one test pixel, or the split fails with a clear message.
    """
    flat = labels.reshape(-1)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in range(1, int(flat.max()) + 1):
        idx = np.flatnonzero(flat == c)
        if idx.size == 0:
            continue
        n_train = count if count is not None else max(1, round(fraction * idx.size))
        if n_train >= idx.size:
            name = class_names[c - 1] if class_names and c <= len(class_names) else f"class {c}"
            share = f"{count} per class" if count is not None else f"{fraction:.0%}"
            raise DataError(f"{name} has only {idx.size} labelled pixels: a {share} training split leaves "
                            f"none for testing; lower the training share or drop the class")
        idx = rng.permutation(idx)
        train.append(idx[:n_train])
        test.append(idx[n_train:])
    if not train:
        raise DataError("the label map has no labelled pixels (all zero)")
    return Split(np.sort(np.concatenate(train)), np.sort(np.concatenate(test)))


def holdout(split: Split, labels: np.ndarray, fraction: float = 0.2, seed: int = 0) -> tuple[Split, np.ndarray]:
    """Carve a validation set out of the training pixels: floor(`fraction` * n) per class (may be 0).

    Returns (Split(train=remaining training pixels, test=the original test pixels), validation indices), so that
    choices made on the validation pixels never look at the test split.
    """
    flat = labels.reshape(-1)[split.train]
    rng = np.random.default_rng(seed + 10_000)
    keep, val = [], []
    for c in np.unique(flat):
        idx = rng.permutation(split.train[flat == c])
        n_val = int(fraction * idx.size)
        val.append(idx[:n_val])
        keep.append(idx[n_val:])
    return Split(np.sort(np.concatenate(keep)), split.test), np.sort(np.concatenate(val))
