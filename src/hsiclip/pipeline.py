"""The one unit of work: (system, scene, protocol, seed, overrides) -> a trained `Run` with its `Record`.

split (the protocol's) -> preprocessing (fitted on the pixels the protocol allows) -> windows -> model -> fit ->
test predictions -> metrics -> record. `hsiclip train`, `compare`, `reproduce` and the benchmarks all call `train`.
"""

from __future__ import annotations

import time
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


def train(scene: Scene, system: str | System = "ours", *, seed: int = 0, protocol: str = "paper",
          split: Split | None = None, fraction: float | None = None, window: int | None = None,
          epochs: int | None = None, device: str = "cpu", progress: bool = True, cache_dir: Path | None = None,
          allow_download: bool = False, checkpoint: Path | None = None, checkpoint_every: int = 5,
          text: torch.Tensor | None = None, **overrides: Any) -> Run:
    """Train `system` (a name of `list_models()`, a recipe file, or a `System`) on `scene` and score it on the test
    pixels of `protocol`'s split for `seed`.

    `split` replaces the protocol's split (e.g. validation folds); `fraction` the recipe's training share; `window`
    the leak-free protocols' margin (default `LEAKFREE_WINDOW`); `epochs` the system's count; `overrides` change
    the recipe (`lr=2e-3`, or dotted: `**{"model.depth": 3}`). `checkpoint`: a file the training loop saves its
    state to every `checkpoint_every` epochs and resumes from when it holds this run's state (`engine.Checkpoint`);
    the caller removes it once the run is saved. `text`: the class text embeddings, when already computed (an
    executor embeds them once in the driver rather than loading the encoder in every worker).
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
    if text is None:  # before seeding: a cold cache draws none
        text = system.text_features(recipe, scene, cache_dir, allow_download)
    preprocess = fit_preprocessing(scene.cube, system.components(recipe, bands),
                                   split.train if proto.fit_on_train else None, seed)
    sampler = WindowSampler(preprocess.transform(scene.cube), system.window(recipe), device)
    targets = scene.targets
    torch.manual_seed(seed)  # the initialisation, the batches, the masks and the semi-hard draws
    model = system.create(recipe, preprocess.channels, scene.num_classes, text).to(device)
    ckpt = None if checkpoint is None else Checkpoint(Path(checkpoint), checkpoint_every, {
        "system": system.name, "recipe": system.flat_recipe(recipe), "protocol": tag, "seed": seed,
        "train": len(split.train)})
    result = system.fit(model, recipe, sampler, split.train, targets[split.train], progress=progress,
                        checkpoint=ckpt)
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
        finished=time.strftime("%Y-%m-%d %H:%M:%S"), recipe=system.flat_recipe(recipe), code=code_version())
    metrics.update(class_names=list(scene.class_names), n_train=len(split.train), n_test=len(split.test), seed=seed,
                   timing={"train_s": result.seconds, "infer_s": infer_s, "device": str(device),
                           "machine": machine()})
    return Run(system, recipe, model.eval(), preprocess, tuple(scene.class_names), scene.name, split, metrics,
               record.to_dict(), result.history, np.asarray(pred), scene.source, scene.files)
