"""A trained run in memory: its model, preprocessing, split, metrics and record; saved to and loaded from a folder.

A run folder holds `config.json` (the resolved recipe), `split.npz` (train/test pixel indices), `checkpoint.pt`
(system, weights, preprocessing, class names), `metrics.json`, `history.json`, `record.json` and
`predictions.npy` (the test pixels' classes). It is written to a temporary sibling folder and renamed at the end,
so a failed save leaves nothing half-written. Folders written before `record.json` existed (our model only) load too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .data.preprocess import Preprocessing, load_preprocessing
from .data.scenes import Scene
from .data.splits import Split
from .data.windows import WindowSampler
from .engine import predict
from .errors import ConfigError, DataError
from .metrics import classification_metrics
from .paths import atomic_dir
from .systems import SYSTEMS, System, VLMSystem, get_system
from .version import __version__

METRIC_KEYS = ("oa", "aa", "kappa", "per_class", "confusion")


@dataclass
class Run:
    """A trained model with everything needed to apply it again."""

    system: System
    recipe: Any  # the system's resolved settings (a `RunConfig` for ours)
    model: nn.Module
    preprocess: Preprocessing
    class_names: tuple[str, ...]
    scene: str  # the scene it was trained on
    split: Split | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    test_pred: np.ndarray | None = None  # class (0..C-1) of each test pixel, as scored
    scene_source: str = ""
    scene_files: dict[str, str | None] | None = None  # trained on a user's own files: where they were (`Scene.files`)

    @property
    def window(self) -> int:
        return self.system.window(self.recipe)

    @property
    def eval_batch_size(self) -> int:
        return self.system.eval_batch_size(self.recipe)

    def sampler(self, cube: np.ndarray, device: str = "cpu") -> WindowSampler:
        """Windows of the preprocessed `cube`, as the model reads them."""
        return WindowSampler(self.preprocess.transform(cube), self.window, device)

    def evaluate(self, scene: Scene, device: str = "cpu", progress: bool = False) -> dict[str, Any]:
        """Metrics on the run's own test split of `scene` (the same batches as in training, so bitwise the same)."""
        if self.split is None:
            raise ConfigError("the run has no split to evaluate on")
        if tuple(scene.class_names) != self.class_names:
            raise DataError(f"scene {scene.name} has classes {scene.class_names}, the run was trained on "
                            f"{self.class_names}")
        pred, _ = predict(self.model.to(device), self.sampler(scene.cube, device), self.split.test,
                          self.eval_batch_size, progress=progress, desc="test")
        return classification_metrics(scene.targets[self.split.test], pred, len(self.class_names))

    def predict(self, cube: np.ndarray, *, tile: int = 256, batch_size: int = 64, device: str = "cpu",
                progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(H, W) classes 1..C and softmax confidence for every pixel of an (H, W, B) cube, one tile at a time."""
        from .data.rasters import ArraySource
        from .predict import classify_tiles

        h, w, _ = cube.shape
        classes = np.empty((h, w), dtype=np.int64)
        confidence = np.empty((h, w), dtype=np.float32)
        for (r0, r1, c0, c1), pred, conf in classify_tiles(self, ArraySource(cube), tile=tile, batch_size=batch_size,
                                                           device=device, progress=progress):
            classes[r0:r1, c0:c1] = pred + 1
            confidence[r0:r1, c0:c1] = conf
        return classes, confidence

    def save(self, path: Path | str, overwrite: bool = True) -> Path:
        """Write the run folder (see the module docstring); `overwrite=False` refuses a non-empty folder."""
        path = Path(path)
        if not overwrite and path.exists() and any(path.iterdir()):
            raise ConfigError(f"run folder {path} exists and is not empty; choose another --out or add --overwrite")
        with atomic_dir(path) as tmp:
            (tmp / "config.json").write_text(json.dumps(self.system.recipe_dict(self.recipe), indent=2) + "\n")
            if self.split is not None:
                self.split.save(tmp / "split.npz")
            torch.save({"system": self.system.name, "config": self.system.recipe_dict(self.recipe),
                        "model": self.model.state_dict(), "preprocess": self.preprocess.state_dict(),
                        "class_names": list(self.class_names), "scene": self.scene,
                        "scene_source": self.scene_source, "scene_files": self.scene_files,
                        "hsiclip_version": __version__}, tmp / "checkpoint.pt")
            (tmp / "history.json").write_text(json.dumps(self.history, indent=1) + "\n")
            (tmp / "metrics.json").write_text(json.dumps(self.metrics, indent=1) + "\n")
            if self.record is not None:
                (tmp / "record.json").write_text(json.dumps(self.record, indent=1) + "\n")
            if self.test_pred is not None:
                np.save(tmp / "predictions.npy", self.test_pred)
        return path


def load_run(path: Path | str, device: str = "cpu") -> Run:
    """Rebuild a run from its folder: model, preprocessing, split, metrics and record."""
    path = Path(path)
    ckpt_path = path / "checkpoint.pt"
    if not ckpt_path.is_file():
        raise ConfigError(f"{path} is not a run folder (no checkpoint.pt); create one with `hsiclip train`")
    try:
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
    except Exception as e:
        raise DataError(f"cannot read {ckpt_path}: {e}") from None
    name = ckpt.get("system", "ours")  # folders before systems: always our model
    # a run of a recipe file is our model under the recipe stored in the checkpoint
    system = get_system(name) if name in SYSTEMS else VLMSystem(name, name)
    recipe = system.recipe_from_dict(ckpt["config"])
    state = ckpt["model"]
    # our model's prototypes are a buffer (an ensemble's under members.N.): the text they were trained against
    text = next((v for k, v in state.items() if k.split(".")[-1] == "text_features"), None)
    preprocess = load_preprocessing(ckpt.get("preprocess", ckpt.get("pca")))
    model = system.create(recipe, preprocess.channels, len(ckpt["class_names"]), text).to(device)
    model.load_state_dict(state)
    model.eval()

    def read_json(name: str, default: Any) -> Any:
        return json.loads((path / name).read_text()) if (path / name).is_file() else default

    split = Split.load(path / "split.npz") if (path / "split.npz").is_file() else None
    pred = np.load(path / "predictions.npy") if (path / "predictions.npy").is_file() else None
    scene = ckpt.get("scene") or recipe.data.scene  # old folders: a RunConfig names its scene
    return Run(system, recipe, model, preprocess, tuple(ckpt["class_names"]), scene, split,
               read_json("metrics.json", {}), read_json("record.json", None), read_json("history.json", []), pred,
               ckpt.get("scene_source", ""), ckpt.get("scene_files"))
