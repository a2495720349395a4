"""Model registry: `create_model(cfg, in_channels, text_features)` builds a registered model by name."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..config import ModelConfig
from ..registry import Registry
from .vit import MaskedViT
from .vlm import HSIClip, HSIClipEnsemble

ModelFactory = Callable[[ModelConfig, int, torch.Tensor], nn.Module]
MODELS: Registry[ModelFactory] = Registry("model")
MODELS.register("hsiclip", HSIClip)


def create_model(cfg: ModelConfig, in_channels: int, text_features: torch.Tensor) -> nn.Module:
    """Build `cfg.name` for windows of `in_channels` bands and (C, T) class text embeddings (`cfg.members` of them,
    averaged, when above 1)."""
    if cfg.members > 1:
        if cfg.name != "hsiclip":
            raise ValueError(f"model.members > 1 is implemented for hsiclip, not {cfg.name!r}")
        return HSIClipEnsemble(cfg, in_channels, text_features)
    return MODELS.get(cfg.name)(cfg, in_channels, text_features)


__all__ = ["MODELS", "HSIClip", "HSIClipEnsemble", "MaskedViT", "create_model"]
