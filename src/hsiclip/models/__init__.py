"""Our vision-language model: `create_vlm(cfg, in_channels, text_features)` builds one model or a seed ensemble."""

from __future__ import annotations

import torch

from ..config import ModelConfig
from .vit import MaskedViT
from .vlm import HSIClip, HSIClipEnsemble, StemMapClassifier


def create_vlm(cfg: ModelConfig, in_channels: int, text_features: torch.Tensor) -> HSIClip | HSIClipEnsemble:
    """The model of `cfg` for windows of `in_channels` bands and (C, T) class text embeddings (`cfg.members` of
    them, scores averaged, when above 1)."""
    return HSIClipEnsemble(cfg, in_channels, text_features) if cfg.members > 1 else HSIClip(cfg, in_channels,
                                                                                         text_features)


__all__ = ["HSIClip", "HSIClipEnsemble", "MaskedViT", "StemMapClassifier", "create_vlm"]
