"""Vision-only: the paper's own masked ViT with a linear classifier and cross-entropy, no text (its Table 7).

Same encoder, window, PCA and training settings as the paper recipe (`configs/paper_indian_pines.toml`), so the only
difference from the vision-language model is the classifier: a trainable Linear(64 -> C) instead of text prototypes.
"""

from __future__ import annotations

from torch import nn

from ...config import ModelConfig
from ..vit import MaskedViT
from .spec import BaselineSpec, register_baseline


def vision_only(bands: int, num_classes: int, window: int = 15) -> nn.Module:
    """The paper-sized masked ViT whose head outputs class logits directly."""
    return MaskedViT(ModelConfig(window=window), bands, out_dim=num_classes)


register_baseline(BaselineSpec(
    name="vision_only",
    build=vision_only,
    citation="Chatterjee & Ghosh (the paper under reproduction), Table 7",
    source="the paper recipe: configs/paper_indian_pines.toml (mask ratio and window as chosen there)",
    window=15,
    pca_components={"default": 25},
    epochs=50,
    batch_size=32,
    lr=1e-3,
))
