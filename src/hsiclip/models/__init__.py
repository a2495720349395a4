"""Model registry: `create_model(cfg, in_channels, text_features)` builds a registered model by name."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..config import ModelConfig
from ..registry import Registry
from .vit import MaskedViT
from .vlm import HSIClip

ModelFactory = Callable[[ModelConfig, int, torch.Tensor], nn.Module]
MODELS: Registry[ModelFactory] = Registry("model")
MODELS.register("hsiclip", HSIClip)


def create_model(cfg: ModelConfig, in_channels: int, text_features: torch.Tensor) -> nn.Module:
    """Build `cfg.name` for windows of `in_channels` bands and (C, T) class text embeddings."""
    return MODELS.get(cfg.name)(cfg, in_channels, text_features)


__all__ = ["MODELS", "HSIClip", "MaskedViT", "create_model"]
