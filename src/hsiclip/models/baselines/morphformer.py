"""morphFormer: a 3-D/2-D convolutional stem, a token mixer, then learnable erosion and dilation around a class token.

Roy, Deria, Shah, Haut, Du & Plaza, "Spectral–Spatial Morphological Attention Transformer for Hyperspectral Image
Classification", IEEE TGRS 61:5503615, 2023. The authors' repositories (mhaut/morphFormer, AnkurDeria/morphFormer)
hold only a README in our index, so the model and its settings are read from the copy in the DCTN authors' toolbox
AllFever/DeepHyperX-DCTN, whose protocol the paper under reproduction follows:

- vit_pytorch/morphFormer.py (class `morphFormer`, FM = 16): Conv3D 8@9x3x3 (spatial padding 1) + BatchNorm + ReLU;
  a "HetConv" on the 8 x (bands - 8) stacked maps: a grouped 3x3 convolution (16 groups when 8 x (bands - 8) is a
  multiple of 16, else 8) plus a 1x1 convolution, summed, to 64 maps + BatchNorm + ReLU; the SSFTT-style tokenizer
  (32 tokens of width 64, Xavier-normal weights); a zero class token and zero position embedding, dropout 0.1.
  Every 64-wide token is then viewed as an 8x8 map. Two blocks (structuring elements 3x3, then 5x5) each send the 32
  HSI tokens through a spectral branch (erosion and dilation, 32 -> 16 maps, each followed by a 1x1 convolution,
  summed, BatchNorm, GELU) and a spatial branch (the same with 3x3 convolutions); the two 16-map outputs are the new
  32 tokens. Only the class token attends: its query (8 heads, no q/k/v bias, attention and output dropout 0.1)
  reads all 33 LayerNormed tokens, is added to the old class token and LayerNormed. A final LayerNorm, then a linear
  head (Xavier-uniform) on the class token. Erosion/dilation are hard min/max-plus over a zero-padded window with
  structuring elements starting at zero (`soft_max=False` in the code). The file's `Mlp` is never used; no MLP here.
- models.py, `get_model("morphformer")`: 15x15 windows; Adam, lr 5e-4, weight decay 5e-3; 200 epochs; batch 32.
- datasets.py: no PCA; every band, min-max scaled over the whole cube (`pca_components` 0 here, the same input).

Not carried over: the toolbox's LR schedule (StepLR x0.7 per 10
epochs in its `train()`, not `get_model`'s ReduceLROnPlateau) and its hold-out of 5% of the
training pixels for validation; its output for the "undefined" class 0 (17 logits on Indian Pines; we output 16).
Weight decay is applied through `fit` (Adam's L2 term, as `torch.optim.Adam(weight_decay=5e-3)` there).
277,552 parameters on Indian Pines (200 bands, 16 classes), counted from those layer sizes. The paper under
reproduction lists "0.21 MB", which we do not reproduce (227,312 with Pavia University's 103 bands; 269,232 on
Indian Pines counting, as torchsummary does, only weights held by modules, not the bare tokenizer and position
parameters). Its 0.07 GFLOPs are multiply-adds: `flops_per_sample` (2 per multiply-add, max-plus not counted) gives
0.130 G on Indian Pines.

Provenance: AllFever/DeepHyperX-DCTN at commit 8b63316 (vit_pytorch/morphFormer.py) and a86d513 (models.py,
datasets.py, main.py).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ...config import TrainConfig
from ...data.windows import WindowSampler
from ...engine import Checkpoint, TrainResult, train_model
from .spec import BaselineSpec, register_baseline

WEIGHT_DECAY = 5e-3  # Adam's L2 term in get_model("morphformer")
_CHUNK = 1 << 24  # elements of the (samples, C_out, L, N) score tensor built at once by the morphology layers


class _Morphology(nn.Module):
    """Grey-level erosion (min of x - s) or dilation (max of x + s) with a learned k x k structuring element per
    (output, input) pair, over a zero-padded window ("same" size); the extremum is over inputs and window at once.

    The winning position is found without autograd, a chunk of samples at a time (bounded memory at any batch size);
    gradients then flow to that position only, as with the authors' `torch.max`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, kind: str) -> None:
        super().__init__()
        if kind not in ("erosion", "dilation"):
            raise ValueError(f"kind must be 'erosion' or 'dilation', not {kind!r}")
        self.kernel, self.sign = kernel, -1.0 if kind == "erosion" else 1.0
        self.weight = nn.Parameter(torch.zeros(out_channels, in_channels * kernel * kernel))  # flat (i, ky, kx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C_out, H, W)
        h, w = x.shape[-2:]
        lo, hi = (self.kernel - 1) // 2, self.kernel // 2
        windows = F.pad(x, (lo, hi, lo, hi)).unfold(2, self.kernel, 1).unfold(3, self.kernel, 1)  # (B, C, H, W, k, k)
        patches = rearrange(windows, "b c h w ky kx -> b (c ky kx) (h w)")  # (B, N, L): N = C_in k k, L = H W
        with torch.no_grad():  # erosion: argmin of x - s = argmax of s - x; dilation: argmax of x + s
            signed = rearrange(self.sign * patches, "b n l -> b 1 l n")
            s = self.weight[None, :, None, :]  # (1, C_out, 1, N)
            step = max(1, _CHUNK // (s.shape[1] * signed[0].numel()))  # samples per chunk: bounded memory
            idx = torch.cat([(signed[i : i + step] + s).argmax(dim=-1) for i in range(0, len(signed), step)])
            # idx (B, C_out, L): which of the N window entries wins
        rows = torch.arange(self.weight.shape[0], device=x.device)[None, :, None]
        out = patches.gather(1, idx) + self.sign * self.weight[rows, idx]  # (B, C_out, L)
        return rearrange(out, "b o (h w) -> b o h w", h=h, w=w)


class _MorphBranch(nn.Module):
    """conv(erosion(x)) + conv(dilation(x)), BatchNorm, GELU: `mix` 1 is the spectral branch, 3 the spatial one."""

    def __init__(self, in_maps: int, out_maps: int, kernel: int, mix: int) -> None:
        super().__init__()
        self.erosion = _Morphology(in_maps, out_maps, kernel, "erosion")
        self.dilation = _Morphology(in_maps, out_maps, kernel, "dilation")
        self.conv_e = nn.Conv2d(out_maps, out_maps, mix, padding=mix // 2)
        self.conv_d = nn.Conv2d(out_maps, out_maps, mix, padding=mix // 2)
        self.out = nn.Sequential(nn.BatchNorm2d(out_maps), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.conv_e(self.erosion(x)) + self.conv_d(self.dilation(x)))


class _ClassAttention(nn.Module):
    """The class token alone queries every token (8 heads); returns its update, (B, 1, D)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.attn_drop = nn.Dropout(dropout)
        self.out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, n, D) -> (B, 1, D)
        q = rearrange(self.q(x[:, :1]), "b one (h d) -> b h one d", h=self.heads)
        k, v = (rearrange(f(x), "b n (h d) -> b h n d", h=self.heads) for f in (self.k, self.v))
        weights = self.attn_drop((q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5).softmax(dim=-1))  # (B, h, 1, n)
        return self.out(rearrange(weights @ v, "b h one d -> b one (h d)"))


class _MorphBlock(nn.Module):
    """HSI tokens -> spectral and spatial morphology (half the tokens each); then the class token attends to all."""

    def __init__(self, num_tokens: int, dim: int, kernel: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.side = math.isqrt(dim)  # each token is viewed as a side x side map
        if self.side**2 != dim:
            raise ValueError(f"token width {dim} is not a square")
        half = num_tokens // 2
        self.spectral = _MorphBranch(num_tokens, half, kernel, mix=1)
        self.spatial = _MorphBranch(num_tokens, half, kernel, mix=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _ClassAttention(dim, heads, dropout)
        self.cls_norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, 1 + L, D) -> (B, 1 + L, D)
        maps = rearrange(z[:, 1:], "b l (h w) -> b l h w", h=self.side)  # (B, L, 8, 8)
        maps = torch.cat([self.spectral(maps), self.spatial(maps)], dim=1)  # (B, L, 8, 8)
        z = torch.cat([z[:, :1], rearrange(maps, "b l h w -> b l (h w)")], dim=1)  # (B, 1 + L, D)
        cls = self.cls_norm(z[:, :1] + self.attn(self.norm(z)))  # (B, 1, D)
        return torch.cat([cls, z[:, 1:]], dim=1)


class MorphFormer(nn.Module):
    def __init__(
        self,
        bands: int,
        num_classes: int,
        window: int = 15,
        *,
        fm: int = 16,
        kernels: tuple[int, ...] = (3, 5),
        heads: int = 8,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if bands <= 8:
            raise ValueError(f"morphFormer's 9-band spectral kernel needs more than 8 bands, got {bands}")
        dim, num_tokens = 4 * fm, 2 * fm  # 64-wide tokens (8x8 maps), 32 of them
        stacked = 8 * (bands - 8)
        groups = dim // 4 if stacked % fm == 0 else dim // 8  # as the authors' HetConv(g=...)
        self.conv3d = nn.Sequential(  # kernel is (spectral, height, width)
            nn.Conv3d(1, 8, (9, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(8), nn.ReLU(),
        )
        self.group_conv = nn.Conv2d(stacked, dim, 3, padding=1, groups=groups)  # HetConv: grouped 3x3 ...
        self.point_conv = nn.Conv2d(stacked, dim, 1)  # ... plus a full 1x1, summed
        self.conv2d_out = nn.Sequential(nn.BatchNorm2d(dim), nn.ReLU())
        # tokenizer (as SSFTT): W_a scores every pixel for each token; W_v maps pixel features to token width.
        self.token_attend = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, num_tokens, dim)))
        self.token_value = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, dim, dim)))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.zeros(1, num_tokens + 1, dim))
        self.emb_dropout = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*(_MorphBlock(num_tokens, dim, k, heads, dropout) for k in kernels))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.normal_(self.head.bias, std=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, w, w, C) -> (B, num_classes)
        x = self.conv3d(rearrange(x, "b h w c -> b 1 c h w"))  # (B, 8, C - 8, w, w)
        x = rearrange(x, "b f d h w -> b (f d) h w")  # spectral features stacked as channels for the 2-D stage
        x = self.conv2d_out(self.group_conv(x) + self.point_conv(x))  # (B, 64, w, w)
        x = rearrange(x, "b f h w -> b (h w) f")  # (B, P, 64) with P = w^2 pixels
        attend = torch.einsum("bpf,lf->blp", x, self.token_attend[0]).softmax(dim=-1)  # (B, L, P), sums to 1 over P
        tokens = torch.einsum("blp,bpf,fd->bld", attend, x, self.token_value[0])  # (B, L, 64)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        z = self.emb_dropout(torch.cat([cls, tokens], dim=1) + self.pos_embedding)  # (B, L + 1, 64)
        return self.head(self.norm(self.blocks(z))[:, 0])


def fit_with_weight_decay(model: nn.Module, sampler: WindowSampler, index: np.ndarray, target: np.ndarray,
                          cfg: TrainConfig, progress: bool = True, checkpoint: Checkpoint | None = None
                          ) -> TrainResult:
    """Cross-entropy with Adam at the spec's lr and batch, plus the toolbox's weight decay (5e-3)."""
    return train_model(model, sampler, index, target, dataclasses.replace(cfg, weight_decay=WEIGHT_DECAY),
                       F.cross_entropy, progress=progress, checkpoint=checkpoint)


register_baseline(BaselineSpec(
    name="morphformer",
    build=MorphFormer,
    citation="Roy et al., IEEE TGRS 2023",
    source="DCTN authors' toolbox AllFever/DeepHyperX-DCTN (8b63316: vit_pytorch/morphFormer.py; a86d513: models.py "
           "get_model('morphformer'), datasets.py); the authors' repos mhaut/morphFormer and AnkurDeria/morphFormer "
           "hold no code in our index",
    window=15,
    pca_components={"default": 0},  # every band, min-max scaled
    epochs=200,
    batch_size=32,
    lr=5e-4,
    fit=fit_with_weight_decay,
))
