"""The declaration every comparison baseline registers: its module factory, window, input and training settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ...registry import Registry


@dataclass(frozen=True)
class BaselineSpec:
    """A comparison system and the settings its paper or official code fixes (`source` says which)."""

    name: str  # registry name
    build: Callable[[int, int, int], nn.Module]  # (bands, num_classes, window) -> module on (B, w, w, bands)
    citation: str  # the paper
    source: str  # where the settings below were read
    window: int  # spatial window
    pca_components: dict[str, int] = field(default_factory=dict)  # per scene name; key "default" for the rest
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3  # Adam
    fit: Callable[..., Any] | None = None  # (model, sampler, index, target, cfg, progress) -> TrainResult

    def pca_for(self, scene: str) -> int:
        """PCA components on `scene`; 0 = no PCA (every band, min-max scaled)."""
        return self.pca_components.get(scene, self.pca_components["default"])

    def input_bands(self, scene: str, bands: int) -> int:
        """Channels the model sees on `scene`, whose cube has `bands` bands."""
        return self.pca_for(scene) or bands


BASELINES: Registry[BaselineSpec] = Registry("baseline")


def register_baseline(spec: BaselineSpec) -> BaselineSpec:
    return BASELINES.register(spec.name, spec)


def get_baseline(name: str) -> BaselineSpec:
    return BASELINES.get(name)
