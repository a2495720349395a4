"""What only a text-prototype classifier can do: classes seen in no training pixel, and very few labels.

Zero-shot (`pipeline.train(..., unseen=...)`): the unseen classes' pixels leave the training set (no window centred
on one is a training sample) and the model trains against the seen classes' prototypes only; afterwards the
prototype buffer holds every class's text embedding, so an unseen class is scored through the trained probe from its
prompt alone. `zero_shot_metrics` scores the test pixels as Xian et al. (TPAMI 2018) do: generalized zero-shot
(every class a candidate) mean per-class accuracy on the seen and on the unseen classes and their harmonic mean, and
conventional zero-shot (unseen test pixels, unseen candidates only). The same trained model is scored a second time
with random unit vectors in place of the unseen prompts' embeddings: text that carries information must beat it.

Few labels (`per_class`): `few_shot_split` keeps N seeded training pixels per class of the protocol's own split,
so every N shares one test set; `prototypes="random"` trains against random unit vectors instead of the prompts'
embeddings (the control for the text prior).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data.splits import Split
from .data.windows import WindowSampler
from .engine import predict
from .errors import ConfigError

PROTOTYPES = ("text", "random")
_RANDOM_OFFSET = 7919  # the random prototypes' generator seed is the run's seed plus this


def class_indices(names_or_labels: Sequence[str | int], class_names: Sequence[str]) -> list[int]:
    """0-based class indices of classes given by name or by label (1..C)."""
    out = []
    for item in names_or_labels:
        text = str(item).strip()
        if text.isdigit() and 1 <= int(text) <= len(class_names):
            out.append(int(text) - 1)
        elif text in class_names:
            out.append(list(class_names).index(text))
        else:
            raise ConfigError(f"unknown class {text!r}: give a label 1..{len(class_names)} or a name of "
                              f"{', '.join(class_names)}")
    if len(set(out)) != len(out):
        raise ConfigError(f"a class is named twice in {list(names_or_labels)}")
    if len(class_names) - len(out) < 2:
        raise ConfigError(f"at least two classes must stay seen; {len(out)} of {len(class_names)} are unseen")
    return sorted(out)


def random_prototypes(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Unit vectors drawn uniformly on the sphere (normalised Gaussians), reproducible from `seed`."""
    g = torch.Generator().manual_seed(seed + _RANDOM_OFFSET)
    return F.normalize(torch.randn(shape, generator=g), dim=-1)


def set_prototypes(model: nn.Module, text: torch.Tensor) -> None:
    """Replace the class prototypes (every `text_features` buffer, an ensemble's members' too) by `text`, (C, T)."""
    found = False
    for module in model.modules():
        if "text_features" in module._buffers:
            buf = module._buffers["text_features"]
            module._buffers["text_features"] = F.normalize(text.float(), dim=-1).to(buf.device)
            found = True
    if not found:
        raise ConfigError("this model has no text prototypes to replace")


def few_shot_split(split: Split, labels: np.ndarray, per_class: int, seed: int) -> Split:
    """`split` with N seeded training pixels per class (all of a class's when it has fewer); the test set kept."""
    if per_class < 1:
        raise ConfigError(f"the training pixels per class must be positive, got {per_class}")
    rng = np.random.default_rng(seed)
    flat = labels.reshape(-1)[split.train]
    keep = [rng.permutation(split.train[flat == c])[:per_class] for c in np.unique(flat) if c > 0]
    return Split(np.sort(np.concatenate(keep)).astype(np.int64), split.test)


def _mean_class_accuracy(truth: np.ndarray, pred: np.ndarray, classes: Sequence[int]) -> float | None:
    """Mean over `classes` (those with test pixels) of each class's accuracy, in %."""
    accs = [float((pred[truth == c] == c).mean()) for c in classes if (truth == c).any()]
    return 100 * float(np.mean(accs)) if accs else None


def _scores(truth: np.ndarray, pred_all: np.ndarray, pred_unseen: np.ndarray, seen: Sequence[int],
            unseen: Sequence[int]) -> dict[str, float | None]:
    s = _mean_class_accuracy(truth, pred_all, seen)
    u = _mean_class_accuracy(truth, pred_all, unseen)
    h = None if s is None or u is None else (0.0 if s + u == 0 else 2 * s * u / (s + u))
    on_unseen = np.isin(truth, unseen)
    zsl = _mean_class_accuracy(truth[on_unseen], np.asarray(unseen)[pred_unseen], unseen)
    return {"seen": s, "unseen": u, "h": h, "zsl": zsl}


def zero_shot_metrics(model: nn.Module, sampler: WindowSampler, test: np.ndarray, targets: np.ndarray,
                      unseen: Sequence[int], text: torch.Tensor, seed: int, batch_size: int,
                      progress: bool = False) -> dict[str, Any]:
    """GZSL seen / unseen mean per-class accuracy and their harmonic mean `h`, and conventional ZSL accuracy, with
    the unseen classes' prototypes from their prompts (`text`) and from random unit vectors (`random`); the model
    is left holding every class's text prototypes."""
    truth = targets[test]
    seen = [c for c in range(text.shape[0]) if c not in set(unseen)]
    unseen_test = test[np.isin(truth, unseen)]
    controls = {"text": text, "random": text.clone()}
    controls["random"][list(unseen)] = random_prototypes((len(unseen), text.shape[1]), seed)
    out: dict[str, Any] = {"unseen_classes": list(unseen), "chance_gzsl": 100 / text.shape[0],
                           "chance_zsl": 100 / len(unseen)}
    for name, protos in controls.items():
        set_prototypes(model, protos)
        pred_all, _ = predict(model, sampler, test, batch_size, progress=progress, desc=f"test, {name}")
        set_prototypes(model, protos[list(unseen)])
        pred_unseen, _ = predict(model, sampler, unseen_test, batch_size, progress=progress, desc="unseen only")
        out[name] = _scores(truth, pred_all, pred_unseen, seen, unseen)
    set_prototypes(model, text)
    return out
