"""Seeded per-class train/test splits of the labelled pixels, stored as flat pixel indices."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, plural


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
            fix = ("lower the count or drop the class" if count is not None else "every class keeps at least one "
                   "training pixel; drop the class or label more of its pixels")
            raise DataError(f"{name} has only {plural(idx.size, 'labelled pixel')}: a {share} training split "
                            f"leaves none for testing ({fix})")
        idx = rng.permutation(idx)
        train.append(idx[:n_train])
        test.append(idx[n_train:])
    if not train:
        raise DataError("the label map has no labelled pixels (all zero)")
    return Split(np.sort(np.concatenate(train)), np.sort(np.concatenate(test)))


def _carve(split: Split, labels: np.ndarray, seed: int,
           pick: Callable[[int], np.ndarray]) -> tuple[Split, np.ndarray]:
    """Per class, shuffle the training pixels (seeded) and move those at positions `pick(n)` to a validation set."""
    flat = labels.reshape(-1)[split.train]
    rng = np.random.default_rng(seed)
    keep, val = [], []
    for c in np.unique(flat):
        idx = rng.permutation(split.train[flat == c])
        mine = np.zeros(idx.size, dtype=bool)
        mine[pick(idx.size)] = True
        val.append(idx[mine])
        keep.append(idx[~mine])
    return Split(np.sort(np.concatenate(keep)), split.test), np.sort(np.concatenate(val))


def holdout(split: Split, labels: np.ndarray, fraction: float = 0.2, seed: int = 0) -> tuple[Split, np.ndarray]:
    """Carve a validation set out of the training pixels: floor(`fraction` * n) per class (may be 0).

    Returns (Split(train=remaining training pixels, test=the original test pixels), validation indices), so that
    choices made on the validation pixels never look at the test split.
    """
    return _carve(split, labels, seed + 10_000, lambda n: np.arange(int(fraction * n)))


def kfold(split: Split, labels: np.ndarray, k: int = 5, fold: int = 0, seed: int = 0) -> tuple[Split, np.ndarray]:
    """Fold `fold` of a seeded, per-class `k`-fold partition of the training pixels, as a validation set.

    Each class's training pixels are shuffled and dealt to the folds in turn, so the `k` validation sets are disjoint
    and together cover every training pixel once (a class with fewer than `k` pixels is absent from some folds).
    Returns (Split(train=the other folds, test=the original test pixels), validation indices), like `holdout`.
    """
    if not 0 <= fold < k:
        raise ValueError(f"fold must be in 0..{k - 1}, got {fold}")
    return _carve(split, labels, seed + 20_000, lambda n: np.arange(fold, n, k))


def field_holdout(split: Split, labels: np.ndarray, fraction: float = 0.25, window: int = 15,
                  seed: int = 0) -> tuple[Split, np.ndarray]:
    """A leak-free validation set carved from the training pixels: per class, the training pixels of a seeded
    `fraction` of the fields (8-connected regions of its label) that hold some (at least one field when a class has
    two or more, none when it has one), minus those within `window // 2` pixels of a remaining training pixel.

    Returns (Split(train=remaining training pixels, test=the original test pixels), validation indices): choices
    made on those validation pixels see fields that no training window touches, and never the test split.
    """
    from scipy import ndimage

    h, w = labels.shape
    flat = labels.reshape(-1)
    rng = np.random.default_rng(seed + 20_000)
    held = np.zeros(h * w, dtype=bool)
    for c in np.unique(flat[split.train]):
        field = ndimage.label(labels == c, structure=np.ones((3, 3)))[0].reshape(-1)
        mine = split.train[flat[split.train] == c]
        fields = np.unique(field[mine])
        k = max(1, round(fraction * len(fields))) if len(fields) > 1 else 0
        chosen = rng.permutation(fields)[:k]
        held[mine[np.isin(field[mine], chosen)]] = True
    train = split.train[~held[split.train]]
    kept = np.zeros(h * w, dtype=bool)
    kept[train] = True
    near = ndimage.maximum_filter(kept.reshape(h, w), size=window, mode="constant").reshape(-1)
    return Split(train, split.test), np.flatnonzero(held & ~near)


def disjoint_split(labels: np.ndarray, *, fraction: float = 0.1, window: int = 25, seed: int = 0,
                   class_names: tuple[str, ...] | None = None, directions: int = 16, per_field: bool = True) -> Split:
    """A spatially disjoint split: no test pixel's `window` x `window` window contains a training pixel.

    Per class (rarest first), round(`fraction` * n) (at least 1) training pixels. With `per_field` (default) they
    are spread over the class's fields (8-connected regions of its label) in proportion to their sizes (largest
    remainder), and in each field they are the pixels furthest along one direction: a strip at one side of every
    field, as if a surveyor had labelled the edge of each field and the rest were to be mapped. Without it they
    are the class's pixels furthest along that direction: one compact region, so testing is on fields never seen
    in training (much harder: on Indian Pines the fields of one crop differ more than the crops do). Of
    `directions` candidate directions (seeded offset), the one kept leaves the most classes with some test pixels,
    and then the most labelled pixels outside the margin. Every labelled pixel within `window // 2` pixels
    (Chebyshev distance) of a training pixel of any class is then dropped from the test set, so train and test
    windows are disjoint both ways (overlapping windows inflate accuracy: Liang et al., TGRS 2017; Nalepa et al.,
    GRSL 2019). A class whose pixels all lie within the margin of its own training pixels keeps no test pixel
    (`missing_in_test`): the scene does not allow both there.
    """
    from scipy import ndimage

    h, w = labels.shape
    flat = labels.reshape(-1)
    labelled = flat > 0
    rng = np.random.default_rng(seed)
    rows, cols = np.divmod(np.arange(h * w), w)

    def margin(mask: np.ndarray) -> np.ndarray:
        return ndimage.maximum_filter(mask.reshape(h, w), size=window, mode="constant").reshape(-1)

    classes = [c for c in range(1, int(flat.max()) + 1) if (flat == c).any()]
    if not classes:
        raise DataError("the label map has no labelled pixels (all zero)")
    train = np.zeros(h * w, dtype=bool)
    for c in sorted(classes, key=lambda c: int((flat == c).sum())):
        idx = np.flatnonzero(flat == c)
        n_train = max(1, round(fraction * idx.size))
        if n_train >= idx.size:
            name = class_names[c - 1] if class_names and c <= len(class_names) else f"class {c}"
            raise DataError(f"{name} has only {plural(idx.size, 'labelled pixel')}: a {fraction:.0%} training "
                            "split leaves none for testing (every class keeps at least one training pixel); drop the "
                            "class or label more of its pixels")
        if per_field:
            field = ndimage.label(labels == c, structure=np.ones((3, 3)))[0].reshape(-1)[idx]
            fields, sizes = np.unique(field, return_counts=True)
            quota = n_train * sizes / idx.size
            take = np.floor(quota).astype(int)
            take[np.argsort(take - quota, kind="stable")[: n_train - take.sum()]] += 1  # largest remainders
            parts = [(idx[field == f], k) for f, k in zip(fields, take, strict=True) if k]
        else:
            parts = [(idx, n_train)]
        best, best_score = None, None
        for angle in rng.uniform(0, 2 * np.pi) + np.arange(directions) * 2 * np.pi / directions:
            cap = np.concatenate([
                part[np.argsort(-(rows[part] * np.sin(angle) + cols[part] * np.cos(angle)), kind="stable")[:k]]
                for part, k in parts])
            trial = train.copy()
            trial[cap] = True
            free = labelled & ~margin(trial)
            score = (int(np.unique(flat[free]).size), int(free.sum()))  # classes left in test, then test pixels
            if best_score is None or score > best_score:
                best, best_score = cap, score
        train[best] = True
    test = labelled & ~margin(train)
    return Split(np.flatnonzero(train), np.flatnonzero(test))


def missing_in_test(split: Split, labels: np.ndarray) -> list[int]:
    """Classes (1..C) with training pixels but no test pixel."""
    flat = labels.reshape(-1)
    return sorted(set(np.unique(flat[split.train]).tolist()) - set(np.unique(flat[split.test]).tolist()))
