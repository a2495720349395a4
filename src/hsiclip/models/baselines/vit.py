"""ViT: a plain vision transformer over 3x3 patches of the full spectrum, with a linear classifier.

The "ViT" row of the comparison, configured as in the toolbox of Zhou, Huang, Yang, Peng & Ban, "DCTN: Dual-Branch
Convolutional Transformer Network With Efficient Interactive Self-Attention for Hyperspectral Image
Classification", IEEE TGRS 62, 2024 (their DeepHyperX fork, AllFever/DeepHyperX-DCTN). Where each setting was read:

- models.py, `get_model("vit")`: 15x15 windows cut into 3x3 patches (25 patch tokens and a class token); a linear
  patch embedding of width 128; a Linformer encoder (the `linformer` package) of depth 12, 8 heads, sequence
  projection size k = 64; Adam at lr 3e-4; 100 epochs by default; batch 100 (the toolbox-wide default).
- vit_pytorch/efficient.py (the ViT that `get_model` builds): patches flattened as (row, column, band), a learned
  position embedding and class token (both standard normal at start), no embedding dropout, and a head of
  LayerNorm + Linear on the class token.
- lucidrains/linformer, linformer/linformer.py (the package's current layout, which the call's keywords fit): every
  layer is x + attn(norm(x)), then x + ff(norm(x)); attention has bias-free q/k/v maps of width 128 (16 per head),
  keys and values projected along the sequence by learned (n, k) matrices (uniform in +-1/sqrt(k)) shared by all
  heads, scaling by 1/sqrt(16), and an output map with bias; the feed-forward is 128 -> 512 -> 128 with GELU;
  dropout 0 throughout (the toolbox passes none).
- datasets.py: no PCA; every band, min-max scaled over the whole cube (`pca_components` 0 here, the same input).
- train.txt: the authors' command runs `--model vit ... --patch_size 15 --epoch 200`, so 200 epochs here.

Not carried over: the toolbox's LR schedule (StepLR x0.7 per 10
epochs in its `train()`, not `get_model`'s ReduceLROnPlateau) and its hold-out of 5% of the
training pixels for validation; our trainer has neither. 2,650,896 parameters on Indian Pines (200 bands,
16 classes), counted from those layer sizes; neither the paper nor the code states one.

Provenance: AllFever/DeepHyperX-DCTN at commit a86d513 (models.py, datasets.py, train.txt) and 8b63316
(vit_pytorch/efficient.py); lucidrains/linformer at commit 1b63f2b (linformer/linformer.py).
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from ..layers import FeedForward
from .spec import BaselineSpec, register_baseline


class _LinformerAttention(nn.Module):
    """Pre-norm self-attention whose keys and values are first mixed along the sequence into `k` slots."""

    def __init__(self, dim: int, heads: int, seq_len: int, k: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.q, self.k, self.v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        bound = 1 / math.sqrt(k)
        self.seq_k = nn.Parameter(torch.empty(seq_len, k).uniform_(-bound, bound))  # (n, k), all heads share it
        self.seq_v = nn.Parameter(torch.empty(seq_len, k).uniform_(-bound, bound))
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, n, dim) -> (B, n, dim)
        x = self.norm(x)
        q = rearrange(self.q(x), "b n (h d) -> b h n d", h=self.heads)
        keys = torch.einsum("bnc,nk->bkc", self.k(x), self.seq_k)  # (B, k, dim): k sequence mixtures
        values = torch.einsum("bnc,nk->bkc", self.v(x), self.seq_v)
        keys, values = (rearrange(t, "b k (h d) -> b h k d", h=self.heads) for t in (keys, values))
        weights = (torch.einsum("bhnd,bhkd->bhnk", q, keys) * q.shape[-1] ** -0.5).softmax(dim=-1)  # (B, h, n, k)
        mixed = torch.einsum("bhnk,bhkd->bhnd", weights, values)
        return self.out(rearrange(mixed, "b h n d -> b n (h d)"))


class ViT(nn.Module):
    def __init__(
        self,
        bands: int,
        num_classes: int,
        window: int = 15,
        *,
        patch: int = 3,
        dim: int = 128,
        depth: int = 12,
        heads: int = 8,
        k: int = 64,
        mlp_mult: int = 4,
    ) -> None:
        super().__init__()
        if window % patch:
            raise ValueError(f"window {window} is not a multiple of the patch size {patch}")
        self.patch = patch
        seq_len = (window // patch) ** 2 + 1  # patch tokens and the class token
        self.embed = nn.Linear(patch * patch * bands, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, seq_len, dim))
        self.layers = nn.ModuleList(
            nn.ModuleList([_LinformerAttention(dim, heads, seq_len, k), FeedForward(dim, mlp_mult * dim)])
            for _ in range(depth)
        )
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, w, w, C) -> (B, num_classes)
        p = self.patch
        tokens = self.embed(rearrange(x, "b (h p1) (w p2) c -> b (h w) (p1 p2 c)", p1=p, p2=p))  # (B, P, dim)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        z = torch.cat([cls, tokens], dim=1) + self.pos_embedding  # (B, P + 1, dim)
        for attn, ff in self.layers:
            z = z + attn(z)
            z = z + ff(z)
        return self.head(z[:, 0])


register_baseline(BaselineSpec(
    name="vit",
    build=ViT,
    citation="ViT as configured by Zhou et al. (DCTN), IEEE TGRS 2024",
    source="DCTN authors' toolbox AllFever/DeepHyperX-DCTN (a86d513: models.py get_model('vit'), datasets.py, "
           "train.txt; 8b63316: vit_pytorch/efficient.py) with lucidrains/linformer at 1b63f2b "
           "(linformer/linformer.py)",
    window=15,
    pca_components={"default": 0},  # every band, min-max scaled
    epochs=200,
    batch_size=100,
    lr=3e-4,
))
