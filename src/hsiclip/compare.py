"""Every comparison system on the same split, preprocessing budget and metrics, resumable per (model, seed).

`run_comparison` trains each (system, seed) pair once: the result is a JSON record (metrics, trainable parameters,
FLOPs per sample, training and test-inference seconds) under the work folder, and a pair whose record exists is
skipped, so an interrupted comparison resumes where it stopped. `report.py` turns the records into the tables and
the trade-off figure. Three kinds of system:

- "vlm": our vision-language model (the paper recipe) and M-CLS CLIP, trained by `run.train_run` (a run folder);
- "baseline": a registered `BaselineSpec`, trained with cross-entropy (or its own `fit`) on its own input;
- "classical": an RBF SVM or a random forest on whitened PCA pixel spectra (scikit-learn).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import __version__
from .config import RunConfig, TrainConfig, load_config
from .data.preprocess import SpectralPCA
from .data.scenes import Scene
from .data.splits import Split, disjoint_split, missing_in_test, random_split
from .data.windows import WindowSampler
from .efficiency import count_parameters, flops_per_sample, machine
from .engine import predict, train_model
from .errors import ConfigError
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


@dataclass(frozen=True)
class System:
    """One row of the comparison."""

    name: str  # registry name (and the key into paper_results.toml)
    label: str  # as the paper's tables name it
    kind: str  # "vlm", "baseline" or "classical"


SYSTEMS: Registry[System] = Registry("comparison system")
_TABLE = [  # the paper's Table 1 order, then Tables 7 and 8, then the classical rows
    ("cnn2d", "2D-CNN", "baseline"), ("cnn3d", "3D-CNN", "baseline"), ("hybridsn", "HybridSN", "baseline"),
    ("vit", "ViT", "baseline"), ("ssftt", "SSFTT", "baseline"), ("morphformer", "morphFormer", "baseline"),
    ("hit", "HiT", "baseline"), ("sstmnet", "SS-TMNet", "baseline"), ("dctn", "DCTN", "baseline"),
    ("mcls_clip", "M-CLS CLIP", "vlm"), ("ours", "ours (paper recipe)", "vlm"),
    ("flagship", "ours (flagship recipe)", "vlm"),
    ("vision_only", "vision-only", "baseline"), ("gaf_nau", "GAF-NAU", "baseline"),
    ("forward_forward", "Forward-Forward", "baseline"), ("svm", "RBF SVM", "classical"),
    ("rf", "random forest", "classical"),
]
for _name, _label, _kind in _TABLE:
    SYSTEMS.register(_name, System(_name, _label, _kind))
ALL_SYSTEMS = tuple(name for name, _, _ in _TABLE)  # `hsiclip compare --models all`, in table order


def vlm_config(name: str, scene: str) -> RunConfig:
    """The recipe of a vision-language row: the paper recipe for `scene`, M-CLS CLIP (full softmax, prompt
    ensemble) on top of it, or the flagship recipe (issue 6; its Indian Pines settings on other scenes)."""
    if name == "flagship":
        return load_config("flagship_indian_pines", scene)
    cfg = load_config(None, scene)
    if name == "mcls_clip":
        cfg = cfg.replace(**{"name": f"mcls_clip_{scene}", "loss.negatives": "all", "text.prompts": "ensemble"})
    return cfg


def default_epochs(name: str, scene: str) -> int | None:
    """Epochs the system's paper or code uses (None for the classical rows)."""
    system = SYSTEMS.get(name)
    if system.kind == "vlm":
        return vlm_config(name, scene).train.epochs
    if system.kind == "baseline":
        return get_baseline(name).epochs
    return None


@dataclass(frozen=True)
class Protocol:
    """How the labelled pixels of a scene are split for a seed, and what preprocessing may look at."""

    name: str
    split: Callable[[Scene, int, float, int], Split]  # (scene, seed, training share, window) -> split
    fit_on_train: bool  # PCA and scaling fitted on the training pixels only
    description: str


PROTOCOLS: Registry[Protocol] = Registry("protocol")
PROTOCOLS.register("paper", Protocol(
    "paper", lambda scene, seed, fraction, window: random_split(scene.labels, fraction=fraction, seed=seed,
                                                                class_names=scene.class_names),
    False, "a random share of each class's labelled pixels for training, the rest for testing; PCA fitted on every "
    "pixel of the scene (the paper's and DCTN's protocol); test windows overlap training pixels"))
PROTOCOLS.register("leakfree", Protocol(
    "leakfree", lambda scene, seed, fraction, window: disjoint_split(scene.labels, fraction=fraction, window=window,
                                                                     seed=seed, class_names=scene.class_names),
    True, "per class, the training share is a strip at one side of each of its fields (in proportion to the "
    "fields' sizes); every labelled pixel within half a window of a training pixel is left out, so no test window "
    "contains a training pixel (the window is `-w<N>` in the protocol's name; systems that read a larger window "
    "are left out of it); PCA and scaling fitted on the training pixels only"))
PROTOCOLS.register("crossfield", Protocol(
    "crossfield", lambda scene, seed, fraction, window: disjoint_split(
        scene.labels, fraction=fraction, window=window, seed=seed, class_names=scene.class_names, per_field=False),
    True, "leak-free like `leakfree`, but each class's training share is one compact region at one side of the "
    "class's extent, so most test pixels lie in fields never seen in training; PCA and scaling fitted on the "
    "training pixels only"))
LEAKFREE_WINDOW = 15  # the default margin window: our model's and most baselines' (HybridSN reads 25 x 25)


def system_window(name: str, scene: str) -> int:
    """The spatial window a system reads around each pixel (1 for the pixel classifiers)."""
    kind = SYSTEMS.get(name).kind
    if kind == "vlm":
        return vlm_config(name, scene).model.window
    return get_baseline(name).window if kind == "baseline" else 1


def protocol_tag(protocol: str, window: int | None = None) -> tuple[str, int]:
    """The protocol's name as recorded (the leak-free one carries its window) and that window."""
    if protocol == "paper":
        return protocol, 0
    window = window or LEAKFREE_WINDOW
    return f"{protocol}-w{window}", window


def baseline_input(cube: np.ndarray, pca_components: int, seed: int = 0,
                   fit_index: np.ndarray | None = None) -> np.ndarray:
    """A baseline's input cube: `pca_components` whitened PCA components, or (0) every band min-max scaled.

    The PCA or the min-max range is fitted on every pixel, or on the pixels `fit_index` (flat) only.
    """
    pixels = cube.reshape(-1, cube.shape[-1])
    fit_on = pixels if fit_index is None else pixels[fit_index]
    if pca_components:
        return SpectralPCA.fit(fit_on, pca_components, seed=seed).transform(cube)
    lo, hi = float(fit_on.min()), float(fit_on.max())
    return ((cube.astype(np.float32) - lo) / max(hi - lo, 1e-12)).astype(np.float32)


def train_baseline(name: str, scene: Scene, seed: int = 0, *, fraction: float = 0.1, split: Split | None = None,
                   epochs: int | None = None, device: str = "cpu", progress: bool = True,
                   save_to: Path | None = None, fit_on_train: bool = False) -> dict[str, Any]:
    """Train baseline `name` on `scene` and return test metrics, parameters, FLOPs per sample and timings.

    `epochs` overrides the paper's count (for reduced-epoch tables, which must say so). `save_to` (a .pt path)
    keeps the weights and the test predictions. `fit_on_train` fits the input's PCA/scaling on training pixels only.
    """
    spec = get_baseline(name)
    torch.manual_seed(seed)
    split = split or random_split(scene.labels, fraction=fraction, seed=seed, class_names=scene.class_names)
    cube = baseline_input(scene.cube, spec.pca_for(scene.name), seed, split.train if fit_on_train else None)
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
    if save_to is not None:
        torch.save({"model": model.state_dict(), "test": split.test, "pred": pred}, save_to)
    metrics.update(model=name, seed=seed, epochs=cfg.epochs, trainable_params=count_parameters(model, trainable=True),
                   flops=flops_per_sample(model, torch.zeros(spec.window, spec.window, k, device=device)),
                   train_s=result.seconds, infer_s=infer_s)
    return metrics


def train_classical(name: str, scene: Scene, seed: int = 0, *, fraction: float = 0.1,
                    split: Split | None = None, fit_on_train: bool = False) -> dict[str, Any]:
    """An RBF SVM ("svm") or a random forest ("rf") on whitened PCA pixel spectra, scored like the others."""
    factory = CLASSICAL.get(name)
    split = split or random_split(scene.labels, fraction=fraction, seed=seed, class_names=scene.class_names)
    k = min(CLASSICAL_PCA, scene.cube.shape[-1])
    pixels = scene.cube.reshape(-1, scene.cube.shape[-1])
    pca = SpectralPCA.fit(pixels[split.train] if fit_on_train else pixels, k, seed=seed)
    features = pca.transform(scene.cube).reshape(-1, k)
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


def vlm_run_config(name: str, scene: str, epochs: int, fit_on_train: bool = False) -> RunConfig:
    """The config a vision-language row trains with under a protocol (before its seed is set)."""
    return vlm_config(name, scene).replace(**{"train.epochs": epochs,
                                              "data.pca_fit": "train" if fit_on_train else None})


def recipe_fields(cfg: RunConfig) -> dict[str, Any]:
    """A config as flat `section.field` values, the seed left out: what a record keeps of its recipe."""
    flat = {f"{section}.{k}": v for section, fields in cfg.to_dict().items() if isinstance(fields, dict)
            for k, v in fields.items()}
    flat.pop("train.seed", None)
    return json.loads(json.dumps(flat))  # tuples as lists, as they read back from JSON


def recipe_changes(stored: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """The fields whose value differs between a record's recipe and the current one, as `field: old -> new`.

    Only fields both know are compared: a field added to the config later is taken to default to the behaviour
    the record was trained with (the convention every new option follows). A record without a stored recipe (made
    before records kept one) is taken as it is.
    """
    if stored is None:
        return []
    return [f"{k}: {stored[k]!r} -> {current[k]!r}" for k in sorted(stored.keys() & current.keys())
            if stored[k] != current[k]]


def _train_vlm(name: str, scene: Scene, seed: int, split: Split, epochs: int, device: str, run_dir: Path,
               cache_dir: Path | None, progress: bool, prompt_file: Path | None = None,
               fit_on_train: bool = False) -> dict[str, Any]:
    from .run import load_run, train_run

    cfg = vlm_run_config(name, scene.name, epochs, fit_on_train).replace(**{"train.seed": seed})
    metrics = train_run(cfg, scene, run_dir, device=device, cache_dir=cache_dir, split=split, progress=progress,
                        prompt_file=prompt_file, overwrite=True)
    model = load_run(run_dir, device).model
    window = torch.zeros(cfg.model.window, cfg.model.window, cfg.data.pca_components, device=device)
    views = 8 if cfg.train.tta else 1  # test-time augmentation classifies 8 views of every window
    metrics.update(trainable_params=count_parameters(model, trainable=True),
                   flops=views * flops_per_sample(model, window),
                   train_s=metrics["timing"]["train_s"], infer_s=metrics["timing"]["infer_s"])
    return metrics


def resolve_epochs(name: str, scene: str, epochs: dict[str, int] | None = None,
                   max_epochs: int | None = None) -> int | None:
    """Epochs a system runs for: an explicit override, else its paper's, capped at `max_epochs`."""
    e = (epochs or {}).get(name) or default_epochs(name, scene)
    return e if e is None or max_epochs is None else min(e, max_epochs)


def record_path(work_dir: Path, scene: str, protocol: str, fraction: float, name: str, seed: int,
                epochs: int | None) -> Path:
    """Where the record of one (system, seed) pair lives; any change of protocol, share or epochs is a new pair."""
    tag = protocol if fraction == 0.1 else f"{protocol}-{fraction:g}"
    return Path(work_dir) / scene / tag / name / (f"seed{seed}" + ("" if epochs is None else f"-ep{epochs}"))


def run_comparison(scene: Scene, names: Sequence[str], seeds: Sequence[int], *, protocol: str = "paper",
                   fraction: float = 0.1, epochs: dict[str, int] | None = None, max_epochs: int | None = None,
                   work_dir: Path = Path("runs/compare"), device: str = "cpu", cache_dir: Path | None = None,
                   prompt_file: Path | None = None, progress: bool = True, log: Callable[[str], None] = print,
                   train: bool = True, window: int | None = None) -> list[dict[str, Any]]:
    """Train every (system, seed) pair that has no record yet; return all their records.

    All systems see the same split for a given seed. Records are written atomically, so a comparison killed at
    any point resumes with the pairs it had finished. `train=False` only collects the finished pairs. `window`
    is the leak-free protocol's margin window (default `LEAKFREE_WINDOW`); systems reading a larger window are
    left out of that protocol, with a log line.
    """
    proto = PROTOCOLS.get(protocol)
    for name in names:  # fail on any unknown name before training anything
        if SYSTEMS.get(name).kind == "baseline":
            get_baseline(name)
    tag, window = protocol_tag(protocol, window)
    if window:
        too_wide = [n for n in names if system_window(n, scene.name) > window]
        for n in too_wide:
            log(f"{SYSTEMS.get(n).label} reads {system_window(n, scene.name)} x {system_window(n, scene.name)} "
                f"windows, more than the {tag} margin allows: left out of this protocol")
        names = [n for n in names if n not in too_wide]
    unknown = set(epochs or {}) - set(names) - set(too_wide if window else [])
    if unknown:
        raise ConfigError(f"epochs given for {sorted(unknown)}, which are not compared here")
    splits: dict[int, Split] = {}
    records = []
    pairs = [(n, s) for n in names for s in seeds]
    # the recipe a vision-language row's record keeps (and is checked against when it is found finished)
    recipes = {n: recipe_fields(vlm_run_config(n, scene.name, e, proto.fit_on_train)) for n in names
               if SYSTEMS.get(n).kind == "vlm" and (e := resolve_epochs(n, scene.name, epochs, max_epochs))}
    for name, seed in tqdm(pairs, desc="compare", unit="run", disable=not progress):
        system = SYSTEMS.get(name)
        n_epochs = resolve_epochs(name, scene.name, epochs, max_epochs)
        stem = record_path(work_dir, scene.name, tag, fraction, name, seed, n_epochs)
        path = stem.with_suffix(".json")
        recipe = recipes.get(name)
        if path.is_file():
            done = json.loads(path.read_text())
            changed = recipe_changes(done.get("recipe"), recipe) if recipe is not None else []
            if not changed:
                records.append(done)
                continue
            log(f"{system.label}, seed {seed}: its record was trained with another recipe ({'; '.join(changed)}): "
                + ("training again" if train else "left out"))
            if not train:
                continue
        elif not train:
            log(f"{system.label}, seed {seed}: not run yet ({n_epochs or '-'} epochs), left out")
            continue
        if seed not in splits:
            splits[seed] = proto.split(scene, seed, fraction, window)
        split = splits[seed]
        path.parent.mkdir(parents=True, exist_ok=True)
        log(f"{system.label}, seed {seed}: {n_epochs or '-'} epochs")
        if system.kind == "vlm":
            assert n_epochs is not None
            m = _train_vlm(name, scene, seed, split, n_epochs, device, stem, cache_dir, progress, prompt_file,
                           proto.fit_on_train)
        elif system.kind == "baseline":
            m = train_baseline(name, scene, seed, split=split, epochs=n_epochs, device=device, progress=progress,
                               save_to=stem.with_suffix(".pt"), fit_on_train=proto.fit_on_train)
        else:
            m = train_classical(name, scene, seed, split=split, fit_on_train=proto.fit_on_train)
        record = {
            "model": name, "label": system.label, "kind": system.kind, "scene": scene.name, "protocol": tag,
            "fraction": fraction, "seed": seed, "epochs": n_epochs, "paper_epochs": default_epochs(name, scene.name),
            **{k: m[k] for k in ("oa", "aa", "kappa", "per_class", "confusion", "trainable_params", "flops",
                                 "train_s", "infer_s")},
            "class_names": list(scene.class_names), "n_train": len(split.train), "n_test": len(split.test),
            "classes_missing_in_test": [scene.class_names[c - 1] for c in missing_in_test(split, scene.labels)],
            "device": device, "machine": machine(), "hsiclip": __version__, "torch": torch.__version__,
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            **({"recipe": recipe} if recipe is not None else {}),
        }
        tmp = path.with_suffix(".json.part")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        tmp.rename(path)
        log(f"{system.label}, seed {seed}: OA {record['oa']:.2f}%, train {record['train_s']:.1f} s")
        records.append(record)
    return records
