"""Every system of the comparison, and every recipe of ours, behind one interface and one registry (timm-style).

A `System` resolves its recipe for a scene (the settings it trains with), says which window and input it reads,
builds its model and trains it. Three kinds share that interface:

- `VLMSystem`: our vision-language model under a recipe (the paper's, M-CLS CLIP, the flagship, any recipe file);
- `NetworkSystem`: a baseline network of `models.baselines`, trained with cross-entropy or its own `fit`;
- `PixelSystem`: a scikit-learn classifier of single-pixel spectra (RBF SVM, random forest), wrapped as a module.

`create_model(name, in_channels, num_classes)` builds any of them as a bare torch module; `list_models()` names
them: the comparison's systems in table order, then the built-in recipes.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import RunConfig, TrainConfig, builtin_configs, from_dict, load_config
from .data.scenes import Scene
from .data.windows import WindowSampler
from .efficiency import count_parameters, flops_per_sample
from .engine import Checkpoint, TrainResult, train_model
from .errors import ConfigError
from .losses import ContrastiveLoss
from .models import create_vlm
from .models.baselines import BaselineSpec, get_baseline
from .registry import Registry
from .text.encoders import embed_class_prompts, resolve_encoder
from .text.prompts import class_texts, load_prompt_set

log = logging.getLogger("hsiclip")

EVAL_BATCH = 1024  # windows per batch at test time for the systems without a config of their own


class System(ABC):
    """One trainable system: its recipe for a scene, its input, its model and how it is trained."""

    name: str  # registry name (and the records' `model` key)
    label: str  # as the tables name it
    kind: str  # "vlm", "baseline" or "classical", as the records name it
    gpu: ClassVar[bool] = True  # runs on a GPU when the run is given one (an executor asks for one for it)

    @abstractmethod
    def recipe(self, scene: str, seed: int = 0, epochs: int | None = None, **overrides: Any) -> Any:
        """The settings this system trains with on `scene` (its paper's, with `overrides` applied)."""

    @abstractmethod
    def recipe_dict(self, recipe: Any) -> dict[str, Any]:
        """The recipe as JSON-able data (stored in run folders)."""

    @abstractmethod
    def recipe_from_dict(self, d: dict[str, Any]) -> Any: ...

    @abstractmethod
    def window(self, recipe: Any) -> int: ...

    @abstractmethod
    def components(self, recipe: Any, bands: int) -> int:
        """Input channels: whitened PCA components, or 0 for every band min-max scaled."""

    @abstractmethod
    def epochs(self, recipe: Any) -> int | None: ...

    @abstractmethod
    def create(self, recipe: Any, in_channels: int, num_classes: int,
               text_features: torch.Tensor | None = None) -> nn.Module: ...

    @abstractmethod
    def fit(self, model: nn.Module, recipe: Any, sampler: WindowSampler, index: np.ndarray, target: np.ndarray,
            progress: bool = True, checkpoint: Checkpoint | None = None) -> TrainResult:
        """Train `model`; a loop over epochs saves to and resumes from `checkpoint` (see `engine.Checkpoint`)."""

    def fraction(self, recipe: Any) -> tuple[float, int | None]:
        """The per-class training share (and count, if set) the recipe asks for."""
        return 0.1, None

    def eval_batch_size(self, recipe: Any) -> int:
        return EVAL_BATCH

    def text_features(self, recipe: Any, scene: Scene, cache_dir: Path | None = None,
                      allow_download: bool = False) -> torch.Tensor | None:
        """(C, T) class text embeddings, for the systems that classify by text prototypes (None otherwise)."""
        return None

    def flat_recipe(self, recipe: Any) -> dict[str, Any]:
        """The recipe as flat `field` values without the seed: what a record keeps and is checked against."""
        flat = {k: v for k, v in self.recipe_dict(recipe).items() if k != "seed"}
        return json_safe(flat)

    def counts(self, model: nn.Module, recipe: Any, in_channels: int, device: str = "cpu"
               ) -> tuple[int | None, int | None]:
        """(trainable parameters, FLOPs per sample) of a trained model."""
        w = self.window(recipe)
        return (count_parameters(model, trainable=True),
                flops_per_sample(model, torch.zeros(w, w, in_channels, device=device)))


def json_safe(d: dict[str, Any]) -> dict[str, Any]:
    """Tuples as lists, as they read back from JSON."""
    import json

    return json.loads(json.dumps(d))


# --- our vision-language model -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class VLMSystem(System):
    """Our model under a recipe: a built-in recipe name or file (`config`; None: the paper recipe of the scene),
    with `changes` on top."""

    name: str
    label: str
    config: str | None = None
    changes: tuple[tuple[str, Any], ...] = ()
    kind: str = "vlm"

    def recipe(self, scene: str, seed: int = 0, epochs: int | None = None, **overrides: Any) -> RunConfig:
        cfg = load_config(self.config, scene).replace(**dict(self.changes))
        if self.name == "mcls_clip":
            cfg = cfg.replace(name=f"mcls_clip_{scene}")
        changes = {_dotted(k): v for k, v in overrides.items()}
        epochs = changes.get("train.epochs") if epochs is None else epochs
        warm = cfg.train.warmup_epochs
        if epochs is not None and "train.warmup_epochs" not in changes and warm >= epochs:
            # a shortened run keeps the recipe's share of warm-up epochs (the schedule's shape), rounded down
            changes["train.warmup_epochs"] = warm * epochs // cfg.train.epochs
            log.info(f"{cfg.name}: warm-up shortened from {warm} to {changes['train.warmup_epochs']} epochs for a "
                     f"{epochs}-epoch run (the recipe runs {cfg.train.epochs})")
        return cfg.replace(**{**changes, "train.seed": seed, "train.epochs": epochs})

    def recipe_dict(self, recipe: RunConfig) -> dict[str, Any]:
        return recipe.to_dict()

    def recipe_from_dict(self, d: dict[str, Any]) -> RunConfig:
        return from_dict(d)

    def flat_recipe(self, recipe: RunConfig) -> dict[str, Any]:
        flat = {f"{section}.{k}": v for section, fields in recipe.to_dict().items() if isinstance(fields, dict)
                for k, v in fields.items()}
        flat.pop("train.seed", None)
        return json_safe(flat)

    def window(self, recipe: RunConfig) -> int:
        return recipe.model.window

    def components(self, recipe: RunConfig, bands: int) -> int:
        return recipe.data.pca_components

    def epochs(self, recipe: RunConfig) -> int:
        return recipe.train.epochs

    def fraction(self, recipe: RunConfig) -> tuple[float, int | None]:
        return recipe.data.train_fraction, recipe.data.train_count

    def eval_batch_size(self, recipe: RunConfig) -> int:
        return recipe.train.eval_batch_size

    def text_features(self, recipe: RunConfig, scene: Scene, cache_dir: Path | None = None,
                      allow_download: bool = False) -> torch.Tensor:
        prompts = load_prompt_set(scene.prompts or scene.name)
        if [p.name for p in prompts] != list(scene.class_names):
            raise ConfigError(f"the prompt set's classes {[p.name for p in prompts]} do not match the scene's "
                              f"{list(scene.class_names)}")
        texts = class_texts(prompts, recipe.text.prompts)
        return torch.from_numpy(embed_class_prompts(texts, recipe.text.encoder, Path(cache_dir) if cache_dir else None,
                                                    allow_download=allow_download))

    def create(self, recipe: RunConfig, in_channels: int, num_classes: int,
               text_features: torch.Tensor | None = None) -> nn.Module:
        if text_features is None:  # a bare model: prototypes of zeros until real ones are loaded
            spec = resolve_encoder(recipe.text.encoder)
            text_features = torch.zeros(num_classes, spec.dim if spec else 384)
        return create_vlm(recipe.model, in_channels, text_features)

    def fit(self, model: nn.Module, recipe: RunConfig, sampler: WindowSampler, index: np.ndarray,
            target: np.ndarray, progress: bool = True, checkpoint: Checkpoint | None = None) -> TrainResult:
        return train_model(model, sampler, index, target, recipe.train, ContrastiveLoss(recipe.loss), progress,
                           checkpoint)


def _dotted(key: str) -> str:
    """`epochs` -> `train.epochs` for the fields whose name is unique across the config's sections."""
    if "." in key or key == "name":
        return key
    owners = [s for s, fields in RunConfig().to_dict().items() if isinstance(fields, dict) and key in fields]
    if len(owners) != 1:
        raise ConfigError(f"unknown recipe field {key!r}; give it as section.field (e.g. train.lr)")
    return f"{owners[0]}.{key}"


# --- baseline networks -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NetworkRecipe:
    window: int  # spatial window (the paper's)
    pca_components: int  # 0: every band, min-max scaled
    epochs: int
    batch_size: int
    lr: float
    seed: int = 0


@dataclass(frozen=True)
class NetworkSystem(System):
    """A baseline network as its paper or code trains it (`models.baselines`)."""

    name: str
    label: str
    kind: str = "baseline"

    @property
    def spec(self) -> BaselineSpec:
        return get_baseline(self.name)

    def recipe(self, scene: str, seed: int = 0, epochs: int | None = None, **overrides: Any) -> NetworkRecipe:
        s = self.spec
        epochs = s.epochs if epochs is None else epochs
        base = NetworkRecipe(s.window, s.pca_for(scene), epochs, s.batch_size, s.lr, seed)
        changes = {k.removeprefix("train."): v for k, v in overrides.items()}
        if bad := set(changes) - {"epochs", "batch_size", "lr"}:
            raise ConfigError(f"{self.name} takes overrides of epochs, batch_size and lr only, not {sorted(bad)}")
        return dataclasses.replace(base, **changes)

    def recipe_dict(self, recipe: NetworkRecipe) -> dict[str, Any]:
        return dataclasses.asdict(recipe)

    def recipe_from_dict(self, d: dict[str, Any]) -> NetworkRecipe:
        return NetworkRecipe(**d)

    def window(self, recipe: NetworkRecipe) -> int:
        return recipe.window

    def components(self, recipe: NetworkRecipe, bands: int) -> int:
        return recipe.pca_components

    def epochs(self, recipe: NetworkRecipe) -> int:
        return recipe.epochs

    def create(self, recipe: NetworkRecipe, in_channels: int, num_classes: int,
               text_features: torch.Tensor | None = None) -> nn.Module:
        return self.spec.build(in_channels, num_classes, recipe.window)

    def fit(self, model: nn.Module, recipe: NetworkRecipe, sampler: WindowSampler, index: np.ndarray,
            target: np.ndarray, progress: bool = True, checkpoint: Checkpoint | None = None) -> TrainResult:
        cfg = TrainConfig(epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr, seed=recipe.seed)
        if self.spec.fit is not None:  # a network not trained by back-propagating cross-entropy (Forward-Forward)
            return self.spec.fit(model, sampler, index, target, cfg, progress=progress, checkpoint=checkpoint)
        return train_model(model, sampler, index, target, cfg, F.cross_entropy, progress=progress,
                           checkpoint=checkpoint)


# --- pixel classifiers (scikit-learn) ----------------------------------------------------------------------------
class PixelClassifier(nn.Module):
    """A scikit-learn classifier of single-pixel spectra as a module on (B, w, w, K) windows -> (B, C) log-scores.

    It reads each window's centre pixel. With `probabilistic` the scores are the log class probabilities, else the
    log of a one-hot of the predicted class. The fitted estimator travels in the state dict (`extra state`).
    """

    def __init__(self, estimator: Any, num_classes: int, probabilistic: bool) -> None:
        super().__init__()
        self.estimator, self.num_classes, self.probabilistic = estimator, num_classes, probabilistic

    def fit(self, pixels: np.ndarray, target: np.ndarray) -> None:
        with warnings.catch_warnings():  # classes with 2 training pixels (IP's Oats) are fewer than the 3 CV folds
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            self.estimator.fit(pixels, target)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1] // 2
        pixels = x[:, c, c].detach().cpu().numpy()  # (B, K)
        scores = np.zeros((len(pixels), self.num_classes))
        if self.probabilistic:
            scores[:, self.estimator.classes_] = self.estimator.predict_proba(pixels)
        else:
            scores[np.arange(len(pixels)), self.estimator.predict(pixels)] = 1.0
        with np.errstate(divide="ignore"):
            return torch.from_numpy(np.log(scores)).float().to(x.device)

    def get_extra_state(self) -> Any:
        return self.estimator

    def set_extra_state(self, state: Any) -> None:
        self.estimator = state


@dataclass(frozen=True)
class PixelRecipe:
    pca_components: int = 0  # 0: every band (the literature's setup); K: K whitened PCA components
    seed: int = 0


@dataclass(frozen=True)
class PixelSystem(System):
    """A per-pixel scikit-learn classifier of every band's value (no spatial window), its hyperparameters chosen
    on the training pixels (cross-validation for the SVM, out-of-bag error for the forest)."""

    name: str
    label: str
    estimator: Callable[[int], Any]  # seed -> unfitted estimator
    probabilistic: bool
    kind: str = "classical"
    gpu: ClassVar[bool] = False  # scikit-learn: the CPU whatever the device

    def recipe(self, scene: str, seed: int = 0, epochs: int | None = None, **overrides: Any) -> PixelRecipe:
        if overrides or epochs is not None:
            raise ConfigError(f"{self.name} has no settings to override (its hyperparameters are cross-validated)")
        return PixelRecipe(seed=seed)

    def recipe_dict(self, recipe: PixelRecipe) -> dict[str, Any]:
        return dataclasses.asdict(recipe)

    def recipe_from_dict(self, d: dict[str, Any]) -> PixelRecipe:
        return PixelRecipe(**d)

    def window(self, recipe: PixelRecipe) -> int:
        return 1

    def components(self, recipe: PixelRecipe, bands: int) -> int:
        return min(recipe.pca_components, bands)  # 0: min-max scaled bands (each estimator standardises its own)

    def epochs(self, recipe: PixelRecipe) -> None:
        return None

    def create(self, recipe: PixelRecipe, in_channels: int, num_classes: int,
               text_features: torch.Tensor | None = None) -> nn.Module:
        return PixelClassifier(self.estimator(recipe.seed), num_classes, self.probabilistic)

    def fit(self, model: nn.Module, recipe: PixelRecipe, sampler: WindowSampler, index: np.ndarray,
            target: np.ndarray, progress: bool = True, checkpoint: Checkpoint | None = None) -> TrainResult:
        assert isinstance(model, PixelClassifier)  # one fit, no epochs: nothing to checkpoint
        t0 = time.perf_counter()
        model.fit(sampler(index)[:, 0, 0].cpu().numpy(), target)
        chosen = getattr(model.estimator, "best_params_", {})
        log.info(f"{self.label}: chose {chosen}")
        return TrainResult([json_safe(chosen)] if chosen else [], time.perf_counter() - t0)

    def counts(self, model: nn.Module, recipe: Any, in_channels: int, device: str = "cpu") -> tuple[None, None]:
        return None, None  # neither is comparable with a network's


SVM_C = tuple(2.0**k for k in range(-3, 16, 2))  # 2^-3 .. 2^15 (Hsu, Chang & Lin's grid for the RBF SVM)
SVM_GAMMA = tuple(2.0**k for k in range(-15, 4, 2))  # 2^-15 .. 2^3, on standardised bands
FOREST_TREES = (100, 300, 500)
FOREST_FEATURES = ("sqrt", 0.1, 0.2, 1 / 3)  # features tried per split: sqrt(B) (Breiman's default) .. B / 3


class CVSVM:
    """The RBF SVM as the HSI literature runs it (Melgani & Bruzzone, TGRS 2004): every band standardised on the
    training pixels, C and gamma chosen by stratified 3-fold cross-validation on the training pixels over a log
    grid that is widened (four steps at a time) while the best value sits on its edge, so that the chosen values
    are never at the edge of the grid searched."""

    def __init__(self, seed: int = 0, widen: int = 3) -> None:
        self.seed, self.widen = seed, widen

    def fit(self, x: np.ndarray, y: np.ndarray) -> CVSVM:
        from sklearn.model_selection import GridSearchCV, StratifiedKFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        cs, gammas = list(SVM_C), list(SVM_GAMMA)
        folds = StratifiedKFold(3, shuffle=True, random_state=self.seed)
        for _ in range(self.widen + 1):
            search = GridSearchCV(make_pipeline(StandardScaler(), SVC(kernel="rbf")),
                                  {"svc__C": cs, "svc__gamma": gammas}, cv=folds, n_jobs=1).fit(x, y)
            c, g = search.best_params_["svc__C"], search.best_params_["svc__gamma"]
            edge = [c in (cs[0], cs[-1]), g in (gammas[0], gammas[-1])]
            if not any(edge):
                break
            if edge[0]:
                cs = _widen(cs, c)
            if edge[1]:
                gammas = _widen(gammas, g)
        self.search, self.classes_ = search, search.classes_
        self.best_params_ = {"C": c, "gamma": g, "cv_accuracy": float(100 * search.best_score_),
                             "grid_C": [cs[0], cs[-1]], "grid_gamma": [gammas[0], gammas[-1]],
                             "at_edge": any(edge)}
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.search.predict(x)


def _widen(grid: list[float], best: float, steps: int = 4) -> list[float]:
    """The log grid extended by `steps` factors of 4 on the side where `best` lies."""
    if best == grid[0]:
        return [grid[0] / 4.0**k for k in range(steps, 0, -1)] + grid
    return grid + [grid[-1] * 4.0**k for k in range(1, steps + 1)]


class OOBForest:
    """The random forest as Ham et al. (TGRS 2005) run it on hyperspectral data: every band, the number of trees
    and the features tried per split chosen by out-of-bag error on the training pixels (ties: fewer trees)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> OOBForest:
        from sklearn.ensemble import RandomForestClassifier

        best = None
        for features in FOREST_FEATURES:
            forest = RandomForestClassifier(FOREST_TREES[-1], max_features=features, oob_score=True, n_jobs=1,
                                            random_state=self.seed, warm_start=True)
            for trees in FOREST_TREES:  # grow the same forest: its OOB score at 100, 300, 500 trees
                forest.set_params(n_estimators=trees)
                with warnings.catch_warnings():  # a few pixels are in every bootstrap sample at 100 trees
                    warnings.filterwarnings("ignore", message="Some inputs do not have OOB scores")
                    forest.fit(x, y)
                if best is None or forest.oob_score_ > best[0]:
                    best = (forest.oob_score_, trees, features)
        assert best is not None
        self.best_params_ = {"n_estimators": best[1], "max_features": best[2], "oob_accuracy": float(100 * best[0])}
        self.forest = RandomForestClassifier(best[1], max_features=best[2], n_jobs=1, random_state=self.seed).fit(x, y)
        self.classes_ = self.forest.classes_
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.forest.predict(x)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.forest.predict_proba(x)


# --- the registry ------------------------------------------------------------------------------------------------
SYSTEMS: Registry[System] = Registry("system")
_NETWORKS = [("cnn2d", "2D-CNN"), ("cnn3d", "3D-CNN"), ("hybridsn", "HybridSN"), ("vit", "ViT"), ("ssftt", "SSFTT"),
             ("morphformer", "morphFormer"), ("hit", "HiT"), ("sstmnet", "SS-TMNet"), ("dctn", "DCTN")]
for _name, _label in _NETWORKS:
    SYSTEMS.register(_name, NetworkSystem(_name, _label))
SYSTEMS.register("mcls_clip", VLMSystem("mcls_clip", "M-CLS CLIP", None,
                                        (("loss.negatives", "all"), ("text.prompts", "ensemble"))))
SYSTEMS.register("ours", VLMSystem("ours", "ours (paper recipe)"))
SYSTEMS.register("flagship", VLMSystem("flagship", "ours (flagship recipe)", "flagship_indian_pines"))
SYSTEMS.register("vision_only", NetworkSystem("vision_only", "vision-only"))
SYSTEMS.register("gaf_nau", NetworkSystem("gaf_nau", "GAF-NAU"))
SYSTEMS.register("forward_forward", NetworkSystem("forward_forward", "Forward-Forward"))
SYSTEMS.register("svm", PixelSystem("svm", "RBF SVM", CVSVM, probabilistic=False))
SYSTEMS.register("rf", PixelSystem("rf", "random forest", OOBForest, probabilistic=True))
# the comparison's rows: the paper's Table 1 order, then Tables 7 and 8, then the pixel classifiers
COMPARISON = tuple(SYSTEMS.in_order())
for _recipe in builtin_configs():
    SYSTEMS.register(_recipe, VLMSystem(_recipe, _recipe, _recipe))


def get_system(name: str) -> System:
    """A registered system, or our model under a recipe file (.toml/.json); unknown names fail with the valid ones."""
    if name not in SYSTEMS and Path(name).suffix in (".toml", ".json") and Path(name).is_file():
        return VLMSystem(Path(name).stem, Path(name).stem, name)
    return SYSTEMS.get(name)


def list_models() -> list[str]:
    """Every system of the comparison (in table order), then our built-in recipes."""
    return [*COMPARISON, *(n for n in SYSTEMS.names() if n not in COMPARISON)]


def create_model(name: str, in_channels: int, num_classes: int, *, text_features: torch.Tensor | None = None,
                 scene: str = "indian_pines", **overrides: Any) -> nn.Module:
    """System `name` as a bare, untrained torch module on (B, w, w, in_channels) windows -> (B, num_classes).

    `overrides` change its recipe (`train.lr=...`, `model.depth=...` for ours); our model takes its (C, T) class
    text embeddings as `text_features` (zeros if not given).
    """
    system = get_system(name)
    return system.create(system.recipe(scene, **overrides), in_channels, num_classes, text_features)
