"""The paper's vision encoder f_theta: a compact masked ViT over 3x3 spatial patches of a PCA window."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from ..config import ModelConfig
from .layers import Block


class ConvStem(nn.Module):
    """SSFTT's spectral-spatial stem (Sun et al., TGRS 2022): Conv3d 3x3x3 + BN + ReLU over (bands, w, w), its
    feature maps stacked, then Conv2d 3x3 + BN + ReLU to `dim` channels: (B, w, w, K) -> (B, (w - 4)^2, dim)."""

    def __init__(self, in_channels: int, dim: int, channels: int = 8) -> None:
        super().__init__()
        self.conv3d = nn.Sequential(nn.Conv3d(1, channels, 3), nn.BatchNorm3d(channels), nn.ReLU())
        self.conv2d = nn.Sequential(nn.Conv2d(channels * (in_channels - 2), dim, 3), nn.BatchNorm2d(dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(x.permute(0, 3, 1, 2).unsqueeze(1))  # (B, c, K - 2, w - 2, w - 2)
        x = self.conv2d(x.flatten(1, 2))  # (B, dim, w - 4, w - 4)
        return x.flatten(2).transpose(1, 2)


class MaskedViT(nn.Module):
    """ViT on a (B, w, w, C) window: patches -> tokens, CLS + learned positions, pre-norm blocks, linear head.

    With the paper's sizes (3x3 patches of 25 PCA bands, dim 64, depth 6, 16 heads, MLP 64) and a 15x15
    window this has 171K parameters (paper: 174K). While training, a random `mask_ratio` share of the patch
    tokens is dropped (MAE-style), which regularises the small encoder.
    """

    def __init__(self, cfg: ModelConfig, in_channels: int, out_dim: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.stem == "conv":
            self.num_patches = (cfg.window - 4) ** 2
            self.stem: nn.Module = ConvStem(in_channels, cfg.dim, cfg.conv_channels)
        else:
            self.num_patches = (cfg.window // cfg.patch) ** 2
            patch_dim = cfg.patch * cfg.patch * in_channels
            self.patch_embed = nn.Sequential(nn.LayerNorm(patch_dim), nn.Linear(patch_dim, cfg.dim),
                                             nn.LayerNorm(cfg.dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, cfg.dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, self.num_patches + 1, cfg.dim) * 0.02)
        self.blocks = nn.Sequential(*(Block(cfg.dim, cfg.heads, cfg.mlp_dim) for _ in range(cfg.depth)))
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, out_dim or cfg.embed_dim)

    def stem_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, w, w, C) window -> (B, N, dim) stem outputs (patch or convolution tokens, no positions yet)."""
        if self.cfg.stem == "conv":
            return self.stem(x)
        p = self.cfg.patch
        x = rearrange(x, "b (h p1) (w p2) c -> b (h w) (p1 p2 c)", p1=p, p2=p)  # (B, N, p*p*C)
        return self.patch_embed(x)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, w, w, C) window -> (B, N, dim) patch tokens with positions added."""
        return self.stem_tokens(x) + self.pos_embed[:, 1:]

    def stem_map(self, tile: torch.Tensor) -> torch.Tensor:
        """The stem at every position of a (H, W, C) tile at once: (H', W', dim), where the tokens of the window
        whose top-left pixel is (y, x) are `map[y + dy, x + dx]` for the offsets `stem_offsets()`. Neighbouring
        windows share their stem outputs, so a whole-scene prediction computes each one once, not once per window.
        """
        if self.cfg.stem == "conv":  # both convolutions are translation-equivariant: run them over the whole tile
            return self.stem(tile.unsqueeze(0))[0].view(tile.shape[0] - 4, tile.shape[1] - 4, -1)
        p = self.cfg.patch
        patches = tile.unfold(0, p, 1).unfold(1, p, 1)  # (H - p + 1, W - p + 1, C, p1, p2)
        return self.patch_embed(rearrange(patches, "h w c p1 p2 -> h w (p1 p2 c)"))

    def stem_offsets(self) -> torch.Tensor:
        """(N, 2) row and column offsets of each token's stem output from its window's top-left pixel."""
        side = self.cfg.window - 4 if self.cfg.stem == "conv" else self.cfg.window // self.cfg.patch
        step = 1 if self.cfg.stem == "conv" else self.cfg.patch
        grid = torch.arange(side) * step
        return torch.stack(torch.meshgrid(grid, grid, indexing="ij"), -1).view(-1, 2)  # token order: row-major

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """Keep a random (1 - mask_ratio) share of the N tokens of each sample: (B, N, D) -> (B, N_keep, D)."""
        b, n, d = x.shape
        keep = max(1, round(n * (1.0 - self.cfg.mask_ratio)))
        order = torch.rand(b, n, device=x.device).argsort(dim=1)[:, :keep]  # (B, N_keep)
        return x.gather(1, order.unsqueeze(-1).expand(-1, -1, d))

    def encode_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, dim) stem outputs -> (B, out_dim): positions, masking while training, CLS, blocks, head."""
        x = x + self.pos_embed[:, 1:]
        if self.training and self.cfg.mask_ratio > 0:
            x = self.mask(x)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = self.blocks(torch.cat([cls, x], dim=1))  # (B, 1 + N, D)
        return self.head(self.norm(x[:, 0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, w, w, C) -> (B, out_dim) unnormalised embedding (the CLS token through the head)."""
        return self.encode_tokens(self.stem_tokens(x))

