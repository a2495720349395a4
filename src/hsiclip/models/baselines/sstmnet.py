"""SS-TMNet: a multi-scale 3-D convolutional embedding, then 26 blocks of spatial and spectral self-attention.

Huang, Zhou, Yang, Zhu & Wang, "SS-TMNet: Spatial–Spectral Transformer Network with Multi-Scale Convolution for
Hyperspectral Image Classification", Remote Sensing 15(5):1206, 2023. Built as in the toolbox of the same group,
AllFever/DeepHyperX-DCTN (the DCTN authors' DeepHyperX fork); where each setting was read:

- models.py, `get_model("SS_TMNet")`: 15x15 windows; depths (8, 5, 8, 5) in four stages of widths (E, E, 512, 512)
  with one 2x2 stride-2 transition after the second stage; MLP ratio 3; Adam at lr 1e-4; 100 epochs; batch 32.
  E is listed per scene there (360 Indian Pines, 168 Pavia University, 248 Houston): each is 8 x the spectral depth
  the embedding leaves, so it is derived from the band count here, which makes any scene work.
- vit_pytorch/SS_TMNet.py, the model (the multi-scale convolutional projection "MSCP"):
  Conv3d 4@11x3x3 stride 2 pad 1 + ReLU; four parallel spectral convolutions (kernels 1, 3, 5, 11, same padding)
  summed with their input, BatchNorm3d, ReLU; Conv3d 8@9x3x3 stride (2, 1, 1) pad 1 + ReLU; twice more four parallel
  spectral convolutions summed with their input (ReLU after the first, BatchNorm3d + ReLU after the second); a
  1x1x1 Conv3d + GELU; the 8 feature maps' spectral depth stacked as E channels on an 8x8 grid. Conv3d weights
  Kaiming-uniform with zero bias. Each block is x + attn(LN(x)), then x + mlp(LN(x)) (MLP E -> 3E -> E, GELU),
  with stochastic depth rising linearly from 0 to 0.1 over the 26 blocks. The attention ("SSAM") sums three
  branches, each its input plus a zero-initialised gamma times an attention output: two spatial branches (a
  depthwise 1x3 or 3x1 convolution, then single-head attention over the pixels with q/k/v/out maps of width E) and
  a spectral one (a 1x1 convolution, then attention among the E channels, each a token of its h*w values, with no
  q/k/v maps and one h*w -> h*w output map; External-Attention-pytorch's SimplifiedScaledDotProductAttention, which
  the toolbox imports); attention dropout 0.1; then a linear map plus the block's normalised input. After the last
  block a 2x2 stride-2 convolution of the embedding (E -> 512) is added, then LayerNorm, mean over the tokens and a
  linear head. Linear weights truncated normal (std 0.02) with zero bias.
- datasets.py: no PCA; every band, min-max scaled over the whole cube (`pca_components` 0 here, the same input).

Left out as dead code (built by the toolbox but never called in its forward pass, so they change nothing but the
parameter count): each SSAM's unused `reweight` MLP (E -> E/4 -> 3E) and an unused `conv_cls_head` Linear(368, C).
Not carried over: the toolbox's LR schedule (StepLR x0.7 per 10
epochs in its `train()`, not `get_model`'s ReduceLROnPlateau), its hold-out of 5% of the
training pixels for validation, and its class-weighted loss (weight 0 only on the unlabelled class, which our
trainer never sees). Our addition: inputs with fewer than 21 bands (too few for the two strided spectral
convolutions) are padded by repeating the last band; no real scene has so few bands without PCA.

83,326,054 parameters on Indian Pines (200 bands, 16 classes; E = 360), the paper's "83.33 MB" read as millions of
parameters (the toolbox's network has 88,461,472 with its dead modules). 6.14 GFLOPs per sample by PyTorch's counter
(2 per multiply-add), i.e. 3.07 G multiply-adds, of which 0.41 G are the attention products; the paper's 2.67
"GFLOPs" matches the rest, as a module-hook counter (thop-like) that misses bare matrix products would report.
Outputs match the toolbox's network to float precision when given the same weights (checked while writing this).

Provenance: AllFever/DeepHyperX-DCTN at commit a86d513 (models.py, datasets.py) and 8b63316
(vit_pytorch/SS_TMNet.py, Attention_Models/SelfAttention.py); SimplifiedScaledDotProductAttention as in
cenaav/External-Attention-pytorch at df94be0 (model/attention/SimplifiedSelfAttention.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..layers import DropPath, repeat_last_band
from .spec import BaselineSpec, register_baseline

MIN_BANDS = 21  # fewest bands the embedding's two strided spectral convolutions accept


class _MultiScaleSpectral(nn.Module):
    """x + sum of four same-padded spectral convolutions (kernels 1, 3, 5, 11) of x."""

    def __init__(self, channels: int, kernels: tuple[int, ...] = (1, 3, 5, 11)) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv3d(channels, channels, (k, 1, 1), padding=(k // 2, 0, 0)) for k in kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, F, D, H, W) -> same
        return x + sum(conv(x) for conv in self.convs)


class _MSCP(nn.Module):
    """Multi-scale convolutional projection: (B, 1, C, w, w) -> (B, s, s, E) with E = 8 x the remaining depth."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(1, 4, (11, 3, 3), stride=2, padding=1)
        self.scales1 = _MultiScaleSpectral(4)
        self.bn1 = nn.BatchNorm3d(4)
        self.conv2 = nn.Conv3d(4, 8, (9, 3, 3), stride=(2, 1, 1), padding=1)
        self.scales2 = _MultiScaleSpectral(8)
        self.scales3 = _MultiScaleSpectral(8)
        self.bn2 = nn.BatchNorm3d(8)
        self.point = nn.Conv3d(8, 8, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def depth(bands: int) -> int:
        """Spectral depth left after the two strided convolutions (kernel 11 stride 2, then kernel 9 stride 2)."""
        return ((bands - 9) // 2 + 1 - 7) // 2 + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))  # (B, 4, D1, s, s)
        x = F.relu(self.bn1(self.scales1(x)))
        x = F.relu(self.conv2(x))  # (B, 8, D2, s, s)
        x = F.relu(self.scales2(x))
        x = F.relu(self.bn2(self.scales3(x)))
        x = F.gelu(self.point(x))
        return rearrange(x, "b f d h w -> b h w (f d)")  # spectral depth of every feature map stacked as channels


class _SpatialAttention(nn.Module):
    """x + gamma * single-head attention over the pixels of a depthwise strip convolution of x."""

    def __init__(self, dim: int, kernel: tuple[int, int], dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, kernel, padding=(kernel[0] // 2, kernel[1] // 2), groups=dim)
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.dropout = nn.Dropout(dropout)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, E, s, s) -> same
        y = rearrange(self.conv(x), "b c h w -> b (h w) c")  # (B, s*s, E): pixels as tokens
        weights = (self.q(y) @ self.k(y).transpose(1, 2) * y.shape[-1] ** -0.5).softmax(dim=-1)  # (B, s*s, s*s)
        y = self.out(self.dropout(weights) @ self.v(y))
        return x + self.gamma * rearrange(y, "b (h w) c -> b c h w", h=x.shape[2])


class _SpectralAttention(nn.Module):
    """x + gamma * attention among the channels of a 1x1 convolution of x (no q/k/v maps, an h*w output map)."""

    def __init__(self, dim: int, side: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 1)
        self.out = nn.Linear(side * side, side * side)
        self.dropout = nn.Dropout(dropout)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, E, s, s) -> same
        y = rearrange(self.conv(x), "b c h w -> b c (h w)")  # (B, E, s*s): channels as tokens
        weights = (y @ y.transpose(1, 2) * y.shape[-1] ** -0.5).softmax(dim=-1)  # (B, E, E)
        y = self.out(self.dropout(weights) @ y)
        return x + self.gamma * rearrange(y, "b c (h w) -> b c h w", h=x.shape[2])


class _SSAM(nn.Module):
    """Spatial-spectral attention: the three branches summed, a linear map, plus the input."""

    def __init__(self, dim: int, side: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.along_w = _SpatialAttention(dim, (1, 3), dropout)
        self.along_h = _SpatialAttention(dim, (3, 1), dropout)
        self.spectral = _SpectralAttention(dim, side, dropout)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, s, s, E) -> same
        c = rearrange(x, "b h w c -> b c h w")
        y = self.along_w(c) + self.along_h(c) + self.spectral(c)  # each branch carries its own copy of c
        return self.proj(rearrange(y, "b c h w -> b h w c")) + x


class _Block(nn.Module):
    """x + attn(LN(x)), then x + mlp(LN(x)), each branch under stochastic depth."""

    def __init__(self, dim: int, side: int, mlp_ratio: int, drop_path: float) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), _SSAM(dim, side)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, s, s, E) -> same
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SSTMNet(nn.Module):
    def __init__(
        self,
        bands: int,
        num_classes: int,
        window: int = 15,
        *,
        depths: tuple[int, int, int, int] = (8, 5, 8, 5),
        width: int = 512,  # stages 3-4
        mlp_ratio: int = 3,
        drop_path: float = 0.1,
    ) -> None:
        super().__init__()
        self.bands = max(bands, MIN_BANDS)
        self.embed = _MSCP()
        dim = 8 * _MSCP.depth(self.bands)  # E: 360 on Indian Pines, 168 on Pavia University
        side = (window - 1) // 2 + 1  # grid after the stride-2 embedding: 8 for 15x15 windows
        n = sum(depths)
        rates = [drop_path * i / max(n - 1, 1) for i in range(n)]  # stochastic depth by global block index
        split = depths[0] + depths[1]  # stages 1-2 share width E and grid; stages 3-4 share width and grid too
        self.stage12 = nn.Sequential(*(_Block(dim, side, mlp_ratio, r) for r in rates[:split]))
        self.transition = nn.Conv2d(dim, width, 2, stride=2)
        self.stage34 = nn.Sequential(*(_Block(width, side // 2, mlp_ratio, r) for r in rates[split:]))
        self.skip = nn.Conv2d(dim, width, 2, stride=2)  # the embedding, brought to the last stage's grid and width
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, w, w, C) -> (B, num_classes)
        x = repeat_last_band(x, self.bands)
        emb = self.embed(rearrange(x, "b h w c -> b 1 c h w"))  # (B, s, s, E)
        z = self.stage12(emb)
        z = rearrange(self.transition(rearrange(z, "b h w c -> b c h w")), "b c h w -> b h w c")  # (B, s/2, s/2, 512)
        z = self.stage34(z) + rearrange(self.skip(rearrange(emb, "b h w c -> b c h w")), "b c h w -> b h w c")
        return self.head(self.norm(rearrange(z, "b h w c -> b (h w) c")).mean(dim=1))


register_baseline(BaselineSpec(
    name="sstmnet",
    build=SSTMNet,
    citation="Huang et al., Remote Sensing 15(5):1206, 2023",
    source="DCTN authors' toolbox AllFever/DeepHyperX-DCTN (a86d513: models.py get_model('SS_TMNet'), "
           "datasets.py; 8b63316: vit_pytorch/SS_TMNet.py, Attention_Models/SelfAttention.py) with "
           "External-Attention-pytorch "
           "(model/attention/SimplifiedSelfAttention.py, as in cenaav/External-Attention-pytorch at df94be0)",
    window=15,
    pca_components={"default": 0},  # every band, min-max scaled
    epochs=100,
    batch_size=32,
    lr=1e-4,
))
