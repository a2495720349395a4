"""The paper's vision-language classifier: masked ViT + frozen text prototypes + trainable probe + logit scale."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .vit import MaskedViT


class StemMapClassifier(nn.Module):
    """A classifier whose windows are read by a translation-equivariant stem: whole-scene prediction runs the stem
    once per tile (`stem_map`) and gathers each window's tokens from it (`predict.predict_cube`)."""

    stem_width: int  # channels of one stem token

    def stem_map(self, tile: torch.Tensor) -> torch.Tensor:  # (H, W, C) -> (H', W', stem_width)
        raise NotImplementedError

    def stem_offsets(self) -> torch.Tensor:  # (N, 2) token offsets from a window's top-left pixel
        raise NotImplementedError

    def classify_stem_tokens(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, N, stem_width) -> (B, C)
        raise NotImplementedError


class HSIClip(StemMapClassifier):
    """Scores s_ij = exp(logit_scale) * <z_i, p_j> between window embeddings and class text prototypes.

    The frozen text-encoder embeddings of the class prompts are a buffer (C, T), so a checkpoint carries
    its own classifier. `projection="text"` maps them to the vision space with a trainable linear probe
    (the paper's 65.6K "projection head" for T = 1024); `projection="vision"` instead maps the vision
    embedding into the text space and keeps the prototypes as they are.
    """

    def __init__(self, cfg: ModelConfig, in_channels: int, text_features: torch.Tensor) -> None:
        super().__init__()
        self.cfg = cfg
        text_dim = text_features.shape[1]
        self.register_buffer("text_features", F.normalize(text_features.float(), dim=-1))  # (C, T)
        self.visual = MaskedViT(cfg, in_channels, cfg.embed_dim)
        if cfg.projection == "text":
            self.text_probe: nn.Module = nn.Linear(text_dim, cfg.embed_dim)
        else:
            self.text_probe = nn.Identity()
            self.visual_proj = nn.Linear(cfg.embed_dim, text_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's initial temperature
        self.stem_width = cfg.dim

    @property
    def num_classes(self) -> int:
        return self.text_features.shape[0]

    def encode_image(self, x: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        return self.encode_stem_tokens(self.visual.stem_tokens(x), normalize)

    def encode_stem_tokens(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """(B, N, dim) outputs of the vision stem (`MaskedViT.stem_tokens` or `stem_map`) -> (B, d) embeddings."""
        z = self.visual.encode_tokens(tokens)  # (B, d)
        if self.cfg.projection == "vision":
            z = self.visual_proj(z)
        return F.normalize(z, dim=-1) if normalize else z

    def encode_text(self, normalize: bool = True) -> torch.Tensor:
        p = self.text_probe(self.text_features)  # (C, d)
        return F.normalize(p, dim=-1) if normalize else p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, w, w, C) windows -> (B, num_classes) scaled cosine similarities."""
        return self.classify_stem_tokens(self.visual.stem_tokens(x))

    def stem_map(self, tile: torch.Tensor) -> torch.Tensor:
        """The vision stem over a whole (H, W, C) tile: (H', W', dim) (`MaskedViT.stem_map`)."""
        return self.visual.stem_map(tile)

    def stem_offsets(self) -> torch.Tensor:
        """(N, 2) offsets of a window's tokens in `stem_map` from its top-left pixel (`MaskedViT.stem_offsets`)."""
        return self.visual.stem_offsets()

    def classify_stem_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, dim) vision-stem outputs -> (B, num_classes) scaled cosine similarities (as `forward`)."""
        scale = self.logit_scale.clamp(max=math.log(100.0)).exp()  # CLIP clamps the scale at 100
        return scale * self.encode_stem_tokens(tokens) @ self.encode_text().T


class HSIClipEnsemble(StemMapClassifier):
    """`cfg.members` independently initialised `HSIClip` models against the same text prototypes.

    Evaluation averages the members' scores, (B, C). Training returns them stacked, (K, B, C), so that the training
    loop gives each member its own loss: K independent models trained on the same batches, one seed ensemble whose
    parameters and FLOPs are counted in full.
    """

    def __init__(self, cfg: ModelConfig, in_channels: int, text_features: torch.Tensor) -> None:
        super().__init__()
        self.cfg = cfg
        self.members = nn.ModuleList(HSIClip(cfg, in_channels, text_features) for _ in range(cfg.members))
        self.stem_width = cfg.dim * cfg.members

    @property
    def num_classes(self) -> int:
        return self.members[0].num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = torch.stack([m(x) for m in self.members])  # (K, B, C)
        return scores if self.training else scores.mean(0)

    def encode_text(self, normalize: bool = True) -> torch.Tensor:
        return self.members[0].encode_text(normalize)

    # whole-scene prediction: the members' stem maps side by side, (H', W', K * dim)
    def stem_map(self, tile: torch.Tensor) -> torch.Tensor:
        return torch.cat([m.stem_map(tile) for m in self.members], dim=-1)

    def stem_offsets(self) -> torch.Tensor:
        return self.members[0].stem_offsets()

    def classify_stem_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, K * dim) tokens of `stem_map` -> (B, C): the mean of the members' scores on their own tokens."""
        chunks = tokens.chunk(len(self.members), dim=-1)
        return torch.stack([m.classify_stem_tokens(t) for m, t in zip(self.members, chunks, strict=True)]).mean(0)
