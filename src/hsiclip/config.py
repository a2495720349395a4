"""Run configuration: frozen dataclasses loaded from TOML/JSON, overridden from the command line, dumped as JSON.

A run is fully described by one `RunConfig`; every run folder holds its resolved copy (`config.json`).
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    scene: str = "indian_pines"  # registered scene name (see `hsiclip scenes`)
    pca_components: int = 25  # spectral PCA size (paper: 25)
    pca_whiten: bool = True  # scale each component to unit variance, as the SSFTT/HybridSN code does (a tie with
    #                          unwhitened on validation pixels: results/recipe_selection_window.md)
    train_fraction: float = 0.1  # per-class share of labelled pixels used for training (paper: 10%)
    train_count: int | None = None  # per-class number of training pixels; overrides train_fraction when set
    pca_fit: str = "scene"  # "scene": PCA fitted on every pixel (the paper's protocol); "train": on the training
    #                         pixels only (the leak-free protocol: nothing is learnt from test pixels)


@dataclass(frozen=True)
class ModelConfig:
    name: str = "hsiclip"  # registered model name (see `hsiclip info --list`)
    window: int = 15  # spatial window (pixels) around each labelled pixel; not stated in the paper
    stem: str = "patch"  # "patch": 3x3 patches -> tokens (paper); "conv": SSFTT's 3-D + 2-D convolution stem, one
    #                      token per pixel of its (window - 4)^2 output
    conv_channels: int = 8  # 3-D convolution filters of the "conv" stem
    patch: int = 3  # spatial patch size of one token (paper: 3x3)
    dim: int = 64  # token width (paper: 64)
    depth: int = 6  # transformer blocks (paper: 6)
    heads: int = 16  # attention heads (paper: 16, so head size 4)
    mlp_dim: int = 64  # hidden size of each block's MLP (paper: 64)
    embed_dim: int = 64  # size of the shared vision-text space
    mask_ratio: float = 0.0  # share of patch tokens dropped at random while training (masked ViT); 0 measured
    #                          best on validation pixels (results/recipe_selection_projection.md)
    dropout: float = 0.0  # dropout inside attention/MLP outputs
    members: int = 1  # independently initialised models whose scores are averaged (a seed ensemble trained in one
    #                   loop, each member on its own loss; parameters and FLOPs x members)
    member_windows: tuple[int, ...] = ()  # one window per member, each the centre crop of `window` (the largest):
    #                                       a multi-scale ensemble; empty: every member reads the whole `window`
    init: str = "torch"  # weight init: "torch" (PyTorch defaults) or "trunc_normal" (ViT/timm: N(0, 0.02) linears)
    projection: str = "vision"  # "vision": project vision embeddings into the frozen text space (measured best
    #                             on validation pixels); "text": a trainable linear probe on the frozen text
    #                             embeddings instead (the paper's 65.6K "projection head" reading)

    def __post_init__(self) -> None:
        object.__setattr__(self, "member_windows", tuple(self.member_windows))  # TOML and JSON give lists


@dataclass(frozen=True)
class TextConfig:
    encoder: str = "minilm"  # registered encoder name, or any sentence-transformers model name or path
    prompts: str = "descriptive"  # "descriptive", "short", "label" or "ensemble" (descriptive + variants, averaged)
    context: int = 0  # learnable context vectors before every prompt, trained through the frozen encoder (CoOp);
    #                   0: the prompts as written (the paper)


@dataclass(frozen=True)
class LossConfig:
    negatives: str = "hard+semi"  # "hard+semi" (paper), "hard", "semi", or "all" (full softmax, CLIP-style)
    k_hard: int = 4  # hardest wrong classes per sample (paper: 4)
    k_semi: int = 4  # random other wrong classes per sample (paper: 4)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 50  # passes over the training pixels (paper, Indian Pines: 50)
    batch_size: int = 32  # paper, Indian Pines: 32
    lr: float = 1e-3  # Adam learning rate (paper: 1e-3)
    weight_decay: float = 0.0  # Adam L2 penalty (paper: none stated)
    eval_batch_size: int = 1024  # windows per batch at evaluation and mapping; bounds memory
    seed: int = 0  # seeds the split, the initialisation and the negative sampling
    # beyond the paper (all off in its recipe): see the flagship recipe and results/flagship.md
    schedule: str = "constant"  # "constant" (paper) or "cosine" (decay to 0 after a linear warm-up)
    warmup_epochs: int = 0  # epochs of linear learning-rate warm-up (cosine schedule)
    augment: bool = False  # random flips and 90-degree rotations of each training window
    spectral_fill: float = 0.0  # share of training windows whose every pixel becomes the centre pixel: a window as
    #                             inside a uniform field, which teaches the model to read the spectrum alone
    spectral_noise: float = 0.0  # std of Gaussian noise added to every value of each training window (the inputs
    #                              are whitened PCA components, so 0.1 is a tenth of a component's spread)
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    ema: float = 0.0  # decay of an exponential moving average of the weights, used for evaluation (0 = off)
    val_fraction: float = 0.0  # share of each class's training pixels held out to pick the best epoch (0 = off)
    tta: bool = False  # test-time augmentation: average the 8 flips/rotations of each window (8x the FLOPs)


@dataclass(frozen=True)
class RunConfig:
    name: str = "paper"  # recipe name, recorded with the run
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    text: TextConfig = field(default_factory=TextConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **dotted: Any) -> RunConfig:
        """Return a copy with `section.field=value` overrides applied (None values are ignored)."""
        return from_dict(merge(self.to_dict(), {k: v for k, v in dotted.items() if v is not None}))


_CLASSES = {"data": DataConfig, "model": ModelConfig, "text": TextConfig, "loss": LossConfig, "train": TrainConfig}


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge nested dicts and `section.field` keys into a copy of `base`."""
    out = json.loads(json.dumps(base))
    for key, value in overrides.items():
        if "." in key:
            section, name = key.split(".", 1)
            out.setdefault(section, {})[name] = value
        elif isinstance(value, dict):
            out.setdefault(key, {}).update(value)
        else:
            out[key] = value
    return out


def from_dict(d: dict[str, Any]) -> RunConfig:
    """Build a validated RunConfig; unknown sections or fields fail with the valid ones."""
    unknown = set(d) - set(_CLASSES) - {"name"}
    if unknown:
        raise ConfigError(f"unknown config section(s) {sorted(unknown)}; valid: name, {', '.join(_CLASSES)}")
    parts: dict[str, Any] = {}
    for section, cls in _CLASSES.items():
        values = d.get(section, {})
        valid = {f.name for f in fields(cls)}
        bad = set(values) - valid
        if bad:
            raise ConfigError(f"unknown field(s) {sorted(bad)} in [{section}]; valid: {', '.join(sorted(valid))}")
        parts[section] = cls(**values)
    cfg = RunConfig(name=d.get("name", "custom"), **parts)
    validate(cfg)
    return cfg


def validate(cfg: RunConfig) -> None:
    m, d, t, lo = cfg.model, cfg.data, cfg.train, cfg.loss
    checks = [
        (m.window % 2 == 1, f"model.window must be odd (got {m.window})"),
        (m.stem in ("patch", "conv"), f"model.stem must be patch or conv (got {m.stem!r})"),
        (m.stem == "conv" or m.window % m.patch == 0,
         f"model.window {m.window} is not a multiple of model.patch {m.patch}"),
        (m.stem == "patch" or m.window > 4, "model.window must be above 4 for the conv stem"),
        (m.members >= 1, f"model.members must be at least 1 (got {m.members})"),
        (not m.member_windows or len(m.member_windows) == m.members,
         f"model.member_windows needs one window per member ({m.members}), got {list(m.member_windows)}"),
        (not m.member_windows or max(m.member_windows) == m.window,
         f"the largest of model.member_windows {list(m.member_windows)} must be model.window ({m.window})"),
        (all(w % 2 == 1 and (w > 4 if m.stem == "conv" else w % m.patch == 0) for w in m.member_windows),
         f"model.member_windows {list(m.member_windows)}: each must be odd, and above 4 for the conv stem or a "
         "multiple of model.patch for the patch stem"),
        (m.dim % m.heads == 0, f"model.dim {m.dim} is not divisible by model.heads {m.heads}"),
        (0.0 <= m.mask_ratio < 1.0, f"model.mask_ratio must be in [0, 1) (got {m.mask_ratio})"),
        (m.init in ("torch", "trunc_normal"), f"model.init must be 'torch' or 'trunc_normal' (got {m.init!r})"),
        (m.projection in ("text", "vision"), f"model.projection must be 'text' or 'vision' (got {m.projection!r})"),
        (0.0 < d.train_fraction < 1.0, f"data.train_fraction must be in (0, 1) (got {d.train_fraction})"),
        (d.train_count is None or d.train_count > 0, "data.train_count must be positive"),
        (d.pca_components > 0, "data.pca_components must be positive"),
        (d.pca_fit in ("scene", "train"), f"data.pca_fit must be 'scene' or 'train' (got {d.pca_fit!r})"),
        (t.epochs > 0 and t.batch_size > 0 and t.lr > 0, "train.epochs, batch_size and lr must be positive"),
        (t.schedule in ("constant", "cosine"), f"train.schedule must be constant or cosine (got {t.schedule!r})"),
        (0 <= t.warmup_epochs < t.epochs or t.warmup_epochs == 0, "train.warmup_epochs must be below train.epochs"),
        (0.0 <= t.label_smoothing < 1.0 and 0.0 <= t.ema < 1.0,
         "train.label_smoothing and train.ema must be in [0, 1)"),
        (0.0 <= t.val_fraction < 1.0, "train.val_fraction must be in [0, 1)"),
        (0.0 <= t.spectral_fill <= 1.0, f"train.spectral_fill must be in [0, 1] (got {t.spectral_fill})"),
        (t.spectral_noise >= 0.0, f"train.spectral_noise must be >= 0 (got {t.spectral_noise})"),
        (lo.negatives in ("hard+semi", "hard", "semi", "all"),
         f"loss.negatives must be one of hard+semi, hard, semi, all (got {lo.negatives!r})"),
        (lo.k_hard >= 0 and lo.k_semi >= 0, "loss.k_hard and loss.k_semi must be >= 0"),
        (cfg.text.context >= 0, f"text.context must be >= 0 (got {cfg.text.context})"),
        (cfg.text.context == 0 or t.ema == 0,
         "text.context does not combine with train.ema (the averaged copy would keep the initial prototypes)"),
        (cfg.text.prompts in ("descriptive", "short", "label", "ensemble"),
         f"text.prompts must be descriptive, short, label or ensemble (got {cfg.text.prompts!r})"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def read_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or JSON config file into a dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        return json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot parse config file {path}: {e}") from None


def builtin_configs() -> list[str]:
    """Names of the recipes shipped with the package (`hsiclip/configs/*.toml`)."""
    return sorted(p.name.removesuffix(".toml") for p in resources.files("hsiclip.configs").iterdir()
                  if p.name.endswith(".toml"))


def load_config(name_or_path: str | None = None, scene: str | None = None) -> RunConfig:
    """Resolve a config: a file path, a built-in recipe name, or (None) the paper recipe for `scene`."""
    if name_or_path is None:
        name_or_path = f"paper_{scene or 'indian_pines'}"
        if name_or_path not in builtin_configs():
            name_or_path = "paper_indian_pines"
    if name_or_path in builtin_configs():
        d = tomllib.loads(resources.files("hsiclip.configs").joinpath(f"{name_or_path}.toml").read_text())
    else:
        if not Path(name_or_path).exists():
            raise ConfigError(f"config {name_or_path!r} is neither a file nor a built-in recipe "
                              f"({', '.join(builtin_configs())})")
        d = read_file(name_or_path)
    if scene is not None:
        d = merge(d, {"data.scene": scene})
    return from_dict(d)


def dump(cfg: RunConfig, path: Path) -> None:
    path.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
