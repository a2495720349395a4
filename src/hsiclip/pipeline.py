"""The one unit of work: (system, scene, protocol, seed, overrides) -> a trained `Run` with its `Record`.

split (the protocol's) -> preprocessing (fitted on the pixels the protocol allows) -> windows -> model -> fit ->
test predictions -> metrics -> record. `hsiclip train`, `compare`, `reproduce` and the benchmarks all call `train`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data.preprocess import fit_preprocessing
from .data.protocols import PROTOCOLS, protocol_tag
from .data.scenes import Scene
from .data.splits import Split, missing_in_test
from .data.windows import WindowSampler
from .efficiency import machine
from .engine import Checkpoint, predict
from .errors import ConfigError
from .metrics import classification_metrics
from .records import Record, code_version
from .run import Run
from .systems import System, get_system
from .version import __version__
from .zeroshot import PROTOTYPES, class_indices, few_shot_split, random_prototypes, zero_shot_metrics


def train(scene: Scene, system: str | System = "ours", *, seed: int = 0, protocol: str = "paper",
          split: Split | None = None, fraction: float | None = None, window: int | None = None,
          epochs: int | None = None, device: str = "cpu", progress: bool = True, cache_dir: Path | None = None,
          allow_download: bool = False, checkpoint: Path | None = None, checkpoint_every: int = 5,
          text: torch.Tensor | None = None, per_class: int | None = None, unseen: Sequence[str | int] = (),
          prototypes: str = "text", **overrides: Any) -> Run:
    """Train `system` (a name of `list_models()`, a recipe file, or a `System`) on `scene` and score it on the test
    pixels of `protocol`'s split for `seed`.

    `split` replaces the protocol's split (e.g. validation folds); `fraction` the recipe's training share; `window`
    the leak-free protocols' margin (default `LEAKFREE_WINDOW`); `epochs` the system's count; `overrides` change
    the recipe (`lr=2e-3`, or dotted: `**{"model.depth": 3}`). `checkpoint`: a file the training loop saves its
    state to every `checkpoint_every` epochs and resumes from when it holds this run's state (`engine.Checkpoint`);
    the caller removes it once the run is saved. `text`: the class text embeddings, when already computed (an
    executor embeds them once in the driver rather than loading the encoder in every worker).

    Text-prototype systems only (`zeroshot`): `per_class` keeps N training pixels per class of the split; `unseen`
    (names or labels) trains without those classes' pixels and scores them from their prompts alone (the record's
    `zero_shot`); `prototypes="random"` trains against random unit vectors instead of the prompts' embeddings.
    """
    system = get_system(system) if isinstance(system, str) else system
    if epochs is not None and epochs < 1:
        raise ConfigError(f"epochs must be a positive number, got {epochs}")
    recipe = system.recipe(scene.name, seed=seed, epochs=epochs, **overrides)
    proto = PROTOCOLS.get(protocol)
    tag, margin = protocol_tag(protocol, window)
    h, w, bands = scene.cube.shape
    if margin and margin > min(h, w):
        raise ConfigError(f"the {tag} margin window {margin} is larger than the {h} x {w} scene; use at most "
                          f"{min(h, w)}")
    if margin and system.window(recipe) > margin:
        raise ConfigError(f"{system.label} reads {system.window(recipe)} x {system.window(recipe)} windows, more "
                          f"than the {tag} margin allows; raise the margin window")
    if system.window(recipe) > min(h, w):  # before any allocation: the padded scene grows with the window
        raise ConfigError(f"{system.label} reads {system.window(recipe)} x {system.window(recipe)} windows, larger "
                          f"than the {h} x {w} scene; use a window of at most {min(h, w)}")
    share, count = system.fraction(recipe)
    if fraction is not None and not 0 < fraction < 1:
        raise ConfigError(f"the training share must be between 0 and 1 (exclusive), got {fraction}")
    if fraction is not None:
        share, count = fraction, None
    if split is None:
        split = proto.split(scene, seed, share, margin, count)
    if prototypes not in PROTOTYPES:
        raise ConfigError(f"unknown prototypes {prototypes!r}; valid: {', '.join(PROTOTYPES)}")
    hidden = class_indices(unseen, scene.class_names) if unseen else []
    targets = scene.targets
    region = split.train  # a leak-free PCA's pixels: the training region, labels unused (N per class are too few)
    if per_class is not None:
        split = few_shot_split(split, scene.labels, per_class, seed)
    if hidden:  # no window centred on an unseen pixel is a training sample, nor in the PCA
        split = Split(split.train[~np.isin(targets[split.train], hidden)], split.test)
        region = region[~np.isin(targets[region], hidden)]
    if text is None:  # before seeding: a cold cache draws none
        text = system.text_features(recipe, scene, cache_dir, allow_download)
    if (hidden or prototypes != "text") and text is None:
        raise ConfigError(f"{system.label} classifies without text prototypes: unseen classes and random prototypes "
                          "need a text-prototype system (ours, mcls_clip, a recipe of ours)")
    if text is not None and prototypes == "random":
        text = random_prototypes(tuple(text.shape), seed)
    seen = [c for c in range(scene.num_classes) if c not in hidden]
    preprocess = fit_preprocessing(scene.cube, system.components(recipe, bands),
                                   region if proto.fit_on_train else None, seed)
    sampler = WindowSampler(preprocess.transform(scene.cube), system.window(recipe), device)
    torch.manual_seed(seed)  # the initialisation, the batches, the masks and the semi-hard draws
    model = system.create(recipe, preprocess.channels, len(seen), None if text is None else text[seen]).to(device)
    remap = np.full(scene.num_classes, -1, dtype=np.int64)  # the seen classes' indices among the model's classes
    remap[seen] = np.arange(len(seen))
    ckpt = None if checkpoint is None else Checkpoint(Path(checkpoint), checkpoint_every, {
        "system": system.name, "recipe": system.flat_recipe(recipe), "protocol": tag, "seed": seed,
        "train": len(split.train)})
    result = system.fit(model, recipe, sampler, split.train, remap[targets[split.train]], progress=progress,
                        checkpoint=ckpt)
    zero_shot = None
    if hidden:  # every class's prototype from here on: the unseen ones from their prompts
        assert text is not None
        zero_shot = zero_shot_metrics(model, sampler, split.test, targets, hidden, text, seed,
                                      system.eval_batch_size(recipe), progress)
    t0 = time.perf_counter()
    pred, _ = predict(model, sampler, split.test, system.eval_batch_size(recipe), progress=progress, desc="test")
    infer_s = time.perf_counter() - t0
    metrics = classification_metrics(targets[split.test], pred, scene.num_classes)
    params, flops = system.counts(model, recipe, preprocess.channels, device)
    default = system.epochs(system.recipe(scene.name))
    record = Record(
        model=system.name, label=system.label, kind=system.kind, scene=scene.name, protocol=tag, fraction=share,
        seed=seed, epochs=system.epochs(recipe), paper_epochs=default,
        **{k: metrics[k] for k in ("oa", "aa", "kappa", "per_class", "confusion")},
        trainable_params=params, flops=flops, train_s=result.seconds, infer_s=infer_s,
        class_names=list(scene.class_names), n_train=len(split.train), n_test=len(split.test),
        classes_missing_in_test=[scene.class_names[c - 1] for c in missing_in_test(split, scene.labels)],
        device=str(device), machine=machine(), hsiclip=__version__, torch=torch.__version__,
        finished=time.strftime("%Y-%m-%d %H:%M:%S"), recipe=system.flat_recipe(recipe), code=code_version(),
        train_count=per_class, unseen=[scene.class_names[c] for c in hidden] or None, zero_shot=zero_shot,
        prototypes=None if prototypes == "text" else prototypes)
    if zero_shot is not None:
        metrics["zero_shot"] = zero_shot
    metrics.update(class_names=list(scene.class_names), n_train=len(split.train), n_test=len(split.test), seed=seed,
                   timing={"train_s": result.seconds, "infer_s": infer_s, "device": str(device),
                           "machine": machine()})
    return Run(system, recipe, model.eval(), preprocess, tuple(scene.class_names), scene.name, split, metrics,
               record.to_dict(), result.history, np.asarray(pred), scene.source, scene.files)
