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
    train_fraction: float = 0.1  # per-class share of labelled pixels used for training (paper: 10%)
    train_count: int | None = None  # per-class number of training pixels; overrides train_fraction when set


@dataclass(frozen=True)
class ModelConfig:
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
    mask_ratio: float = 0.0  # share of patch tokens dropped at random while training (masked ViT)
    members: int = 1  # independently initialised models trained side by side, scores averaged (a seed ensemble)
    projection: str = "vision"  # "vision": vision embeddings projected into the frozen text space; "text": a
    #                             trainable linear probe on the text embeddings (the paper's "projection head")


@dataclass(frozen=True)
class TextConfig:
    encoder: str = "minilm"  # registered encoder name, or any sentence-transformers model name or path
    prompts: str = "descriptive"  # "descriptive", "short", "label" or "ensemble" (descriptive + variants, averaged)


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
    schedule: str = "constant"  # "constant" (paper) or "cosine" (decay to 0 after a linear warm-up)
    warmup_epochs: int = 0  # epochs of linear learning-rate warm-up (cosine schedule)
    augment: bool = False  # random flips and 90-degree rotations of each training window


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


# Fields of measured-and-dropped ablations (README, History) with the one value that means "off". Configs written
# before they were removed (old run folders) still load when they hold that value. `pca_fit` is now the protocol's.
REMOVED_FIELDS: dict[str, tuple[Any, ...]] = {
    "data.pca_whiten": (True,), "data.pca_fit": ("scene", "train"), "model.name": ("hsiclip",),
    "model.dropout": (0.0,), "model.member_windows": ((), []), "model.init": ("torch",), "text.context": (0,),
    "train.spectral_fill": (0.0,), "train.spectral_noise": (0.0,), "train.label_smoothing": (0.0,),
    "train.ema": (0.0,), "train.val_fraction": (0.0,), "train.tta": (False,),
}


def _drop_removed(section: str, values: dict[str, Any]) -> dict[str, Any]:
    """`values` without the removed fields that hold their "off" value; any other value of one fails."""
    kept = {}
    for name, value in values.items():
        off = REMOVED_FIELDS.get(f"{section}.{name}")
        if off is None:
            kept[name] = value
        elif value not in off:
            raise ConfigError(f"{section}.{name} = {value!r}: this option was measured, dropped and removed (see "
                              "the README's History); the config cannot be reproduced by this version")
    return kept


def from_dict(d: dict[str, Any]) -> RunConfig:
    """Build a validated RunConfig; unknown sections or fields fail with the valid ones."""
    unknown = set(d) - set(_CLASSES) - {"name"}
    if unknown:
        raise ConfigError(f"unknown config section(s) {sorted(unknown)}; valid: name, {', '.join(_CLASSES)}")
    parts: dict[str, Any] = {}
    for section, cls in _CLASSES.items():
        values = _drop_removed(section, d.get(section, {}))
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
        (m.dim % m.heads == 0, f"model.dim {m.dim} is not divisible by model.heads {m.heads}"),
        (0.0 <= m.mask_ratio < 1.0, f"model.mask_ratio must be in [0, 1) (got {m.mask_ratio})"),
        (m.projection in ("text", "vision"), f"model.projection must be 'text' or 'vision' (got {m.projection!r})"),
        (0.0 < d.train_fraction < 1.0, f"data.train_fraction must be in (0, 1) (got {d.train_fraction})"),
        (d.train_count is None or d.train_count > 0, "data.train_count must be positive"),
        (d.pca_components > 0, "data.pca_components must be positive"),
        (t.epochs > 0 and t.batch_size > 0 and t.lr > 0, "train.epochs, batch_size and lr must be positive"),
        (t.schedule in ("constant", "cosine"), f"train.schedule must be constant or cosine (got {t.schedule!r})"),
        (0 <= t.warmup_epochs < t.epochs or t.warmup_epochs == 0, "train.warmup_epochs must be below train.epochs"),
        (lo.negatives in ("hard+semi", "hard", "semi", "all"),
         f"loss.negatives must be one of hard+semi, hard, semi, all (got {lo.negatives!r})"),
        (lo.k_hard >= 0 and lo.k_semi >= 0, "loss.k_hard and loss.k_semi must be >= 0"),
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
