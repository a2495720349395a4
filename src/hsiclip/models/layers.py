"""Small reusable transformer blocks (pre-norm), shared by the ViT and later baselines."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention with its own pre-norm (vit-pytorch layout: qkv without bias)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, N, D)
        q, k, v = rearrange(self.qkv(self.norm(x)), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        if torch.is_grad_enabled() and x.device.type == "cpu":
            # with the paper's 4-wide heads, the CPU flash kernel's backward is slower than plain matmuls
            attn = F.dropout((q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5).softmax(-1), self.dropout, self.training)
            out = attn @ v  # (B, H, N, d)
        else:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))


class FeedForward(nn.Module):
    """Pre-norm MLP: LayerNorm -> Linear -> GELU -> Linear."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, dim), nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Block(nn.Module):
    """x + attn(x), then x + mlp(x)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.attn = Attention(dim, heads, dropout)
        self.mlp = FeedForward(dim, mlp_dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class DropPath(nn.Module):
    """Stochastic depth (timm's `DropPath`): zero a whole sample's residual branch with probability p, else scale."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - self.p)  # (B, 1, ...)
        return x * keep / (1 - self.p)


def repeat_last_band(x: torch.Tensor, bands: int, dim: int = -1) -> torch.Tensor:
    """Pad `x` along `dim` to `bands` entries by repeating its last one (no-op if it already has that many)."""
    missing = bands - x.shape[dim]
    if missing <= 0:
        return x
    last = x.narrow(dim, x.shape[dim] - 1, 1)
    return torch.cat([x, last.expand(*[missing if d == dim % x.dim() else -1 for d in range(x.dim())])], dim=dim)
