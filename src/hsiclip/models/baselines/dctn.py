"""DCTN: a dual 3-D/grouped-2-D convolutional embedding, then a transformer branch and a convolutional branch fused.

Zhou, Huang, Yang, Peng & Ban, "DCTN: Dual-Branch Convolutional Transformer Network With Efficient Interactive
Self-Attention for Hyperspectral Image Classification", IEEE TGRS 62, 2024. Built as in the authors' toolbox
AllFever/DeepHyperX-DCTN (their DeepHyperX fork); where each setting was read:

- models.py, `get_model("DCTN")`: 15x15 windows; depths (2, 2, 5, 3) in four stages of widths (E, E, 512, 512) with
  one 2x2 stride-2 transition after the second stage; MLP ratio 3; Adam at lr 1e-4; 200 epochs; batch 100 (DCTN sets
  none, so the toolbox-wide default applies). E is set per scene, through the embedding below.
- train.txt: the authors' command, `--model DCTN --dataset PaviaU --training_sample 0.1 --patch_size 15 --epoch 200`.
- vit_pytorch/DCTN.py, the model. Multi-branch dual convolutional projection ("MDCP"), two branches summed with two
  learned weights (both 1 at start), then a 3x3 stride-2 convolution E -> E (15x15 -> 7x7):
  a grouped 2-D branch (the spectrum padded by repeating its last band to a multiple of G groups, a grouped 1x1
  convolution to G x K channels + BatchNorm + ReLU, then a residual block: grouped 3x3 + BN + ReLU and grouped 5x5 +
  BN, plus a full 1x1 + BN of the input, ReLU) and a 3-D branch (Conv3d 4@11x7x7 and 8@9x5x5, spatially same-padded,
  with no activation between; adaptive average pooling of the spectral axis to depth D; BatchNorm3d; the 8 maps'
  depth stacked as E = 8D channels). (G, K, D) is (11, 40, 55) on Indian Pines (E = 440) and (5, 64, 40) on Pavia
  University and Houston (E = 320); our choice for other scenes: the setting of the toolbox scene nearest in band
  count (200, 103 and 144 bands), so Salinas (204) takes Indian Pines'. The toolbox's fallback for other scenes
  cannot run: its widths disagree (407, 320 and 168). Each block ("PermutatorBlock" with EISA): x = GN(x),
  x = x + EISA(x), x = GN(x), x = x + FFN(x), GroupNorm with 8 groups at width 440 and 16 otherwise, the residuals
  taken from the normalised x, stochastic depth rising linearly from 0 to 0.1 over the 12 blocks. EISA (efficient
  interactive self-attention): three bias-free 1x1 convolutions + GELU give row, column and band features; the row
  means gate the rows (1x1 then k3 Conv1d, each + sigmoid), row and column means together gate the columns (the same
  on the two stacked), and row and column means mapped to width E (Linear s -> E each) with the band means gate the
  bands (the same on the three stacked); the three gated maps are fused by a bias-free 1x1 convolution 3E -> E, a
  linear map, and summed with the block input under two learned weights (both 1 at start). FFN: bias-free 1x1
  E -> 3E, GELU, depthwise 3x3, GELU, 1x1 3E -> E. The convolutional branch runs on the embedding: 3x3 E -> 128,
  depthwise 3x3, 3x3 128 -> 256, 2x2 max pooling, 3x3 256 -> 256, 3x3 256 -> 512, depthwise 3x3, each + BatchNorm
  + GELU. A 2x2 stride-2 convolution of the embedding (E -> 512), the transformer output and the convolutional output
  are concatenated and fused by a 1x1 convolution 1536 -> 512, then LayerNorm, mean over the tokens, linear head.
  Conv2d weights Xavier-uniform, Linear weights truncated normal (std 0.02) with zero bias.
- datasets.py: no PCA; every band, min-max scaled over the whole cube (`pca_components` 0 here, the same input).

Left out as dead code (built by the toolbox but never called in its forward pass, so they change nothing but the
parameter count): each EISA's unused Conv2d(3E, E, 1), the model's unused `conv_cls_head` Linear(368, C), and its
unused parameters `gamma1`, `gamma3` and `weights` (3). Not carried over: the toolbox's LR schedule (StepLR x0.7 per 10
epochs in its `train()`, not `get_model`'s ReduceLROnPlateau), its hold-out of 5% of the training pixels for
validation, and its class-weighted loss
(weight 0 only on the unlabelled class, which our trainer never sees). Our addition: inputs with fewer than 19 bands
(too few for the 3-D branch's two valid spectral convolutions) are padded by repeating the last band; no real scene
has so few bands without PCA.

45,318,442 parameters on Indian Pines (200 bands, 16 classes; E = 440), the paper's "45.32 MB" read as millions of
parameters (the toolbox's network has 53,939,007 with its dead modules). 2.95 GFLOPs per sample by PyTorch's counter
(2 per multiply-add), i.e. 1.47 G multiply-adds: the paper's 1.48 "GFLOPs". Outputs match the toolbox's network to
float precision when given the same weights (checked while writing this, on the Indian Pines, Pavia University and
Houston settings).

Provenance: AllFever/DeepHyperX-DCTN at commit a86d513 (models.py, datasets.py, train.txt) and at commit 8b63316
(vit_pytorch/DCTN.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn

from ..layers import DropPath, repeat_last_band
from .spec import BaselineSpec, register_baseline

MIN_BANDS = 19  # fewest bands the 3-D branch's valid spectral convolutions (11, then 9) accept


@dataclass(frozen=True)
class EmbedSize:
    """The toolbox's per-scene MDCP setting (vit_pytorch/DCTN.py), keyed by the scene's band count."""

    bands: int  # the toolbox scene's band count
    groups: int  # G: groups of the 2-D branch
    group_width: int  # K: channels per group
    depth: int  # D: spectral depth the 3-D branch is pooled to; 8 * D == G * K == E

    @property
    def dim(self) -> int:
        return self.groups * self.group_width


EMBED_SIZES = (
    EmbedSize(bands=103, groups=5, group_width=64, depth=40),  # Pavia University
    EmbedSize(bands=144, groups=5, group_width=64, depth=40),  # Houston
    EmbedSize(bands=200, groups=11, group_width=40, depth=55),  # Indian Pines
)


def embed_size(bands: int) -> EmbedSize:
    """The setting of the toolbox scene nearest in band count (ours for scenes the toolbox does not configure)."""
    return min(EMBED_SIZES, key=lambda s: abs(s.bands - bands))


class _MDCP(nn.Module):
    """Dual convolutional projection: (B, w, w, C) -> (B, E, s, s), s = (w - 3) // 2 + 1."""

    def __init__(self, bands: int, size: EmbedSize) -> None:
        super().__init__()
        self.padded_bands = math.ceil(bands / size.groups) * size.groups
        e, g = size.dim, size.groups
        self.spectral_groups = nn.Sequential(
            nn.Conv2d(self.padded_bands, e, 1, groups=g), nn.BatchNorm2d(e), nn.ReLU(),
        )
        self.local = nn.Sequential(
            nn.Conv2d(e, e, 3, padding=1, groups=g), nn.BatchNorm2d(e), nn.ReLU(),
            nn.Conv2d(e, e, 5, padding=2, groups=g), nn.BatchNorm2d(e),
        )
        self.shortcut = nn.Sequential(nn.Conv2d(e, e, 1), nn.BatchNorm2d(e))
        self.conv3d = nn.Sequential(  # kernels are (spectral, height, width)
            nn.Conv3d(1, 4, (11, 7, 7), padding=(0, 3, 3)),
            nn.Conv3d(4, 8, (9, 5, 5), padding=(0, 2, 2)),
            nn.AdaptiveAvgPool3d((size.depth, None, None)),  # spectral axis only; the grid stays w x w
            nn.BatchNorm3d(8),
        )
        self.weights = nn.Parameter(torch.ones(2))
        self.down = nn.Conv2d(e, e, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cube = rearrange(x, "b h w c -> b c h w")
        y = self.spectral_groups(repeat_last_band(cube, self.padded_bands, dim=1))  # (B, E, w, w)
        y = F.relu(self.local(y) + self.shortcut(y))
        z = self.conv3d(rearrange(repeat_last_band(x, MIN_BANDS), "b h w c -> b 1 c h w"))  # (B, 8, D, w, w)
        z = rearrange(z, "b f d h w -> b (f d) h w")  # depth of every feature map stacked as channels
        return self.down(self.weights[0] * z + self.weights[1] * y)


class _Gate(nn.Sequential):
    """Mixes n stacked profiles (B, n, L) into one gate (B, 1, L) in (0, 1): 1x1 Conv1d, sigmoid, k3 Conv1d, sigmoid."""

    def __init__(self, n: int) -> None:
        super().__init__(
            nn.Conv1d(n, 1, 1, bias=False), nn.Sigmoid(), nn.Conv1d(1, 1, 3, padding=1), nn.Sigmoid(),
        )


class _EISA(nn.Module):
    """Efficient interactive self-attention: row, column and band gates that see one another's profiles."""

    def __init__(self, dim: int, side: int) -> None:
        super().__init__()
        self.rows, self.cols, self.bands = (nn.Conv2d(dim, dim, 1, bias=False) for _ in range(3))
        self.row_gate, self.col_gate, self.band_gate = _Gate(1), _Gate(2), _Gate(3)
        self.row_to_band = nn.Linear(side, dim)  # a row profile (length s) as a band profile (length E)
        self.col_to_band = nn.Linear(side, dim)
        self.fuse = nn.Conv2d(3 * dim, dim, 1, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.weights = nn.Parameter(torch.ones(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, E, s, s) -> same
        h, w, s = F.gelu(self.rows(x)), F.gelu(self.cols(x)), F.gelu(self.bands(x))
        row = reduce(h, "b c h w -> b 1 h", "mean")  # (B, 1, s): each row's mean
        col = reduce(w, "b c h w -> b 1 w", "mean")  # (B, 1, s): each column's mean
        band = reduce(s, "b c h w -> b 1 c", "mean")  # (B, 1, E): each band's mean
        h = h * rearrange(self.row_gate(row), "b 1 h -> b 1 h 1")
        w = w * rearrange(self.col_gate(torch.cat([row, col], dim=1)), "b 1 w -> b 1 1 w")
        profiles = torch.cat([self.row_to_band(row), self.col_to_band(col), band], dim=1)  # (B, 3, E)
        s = s * rearrange(self.band_gate(profiles), "b 1 c -> b c 1 1")
        y = rearrange(self.fuse(torch.cat([h, w, s], dim=1)), "b c h w -> b h w c")
        y = rearrange(self.proj(y), "b h w c -> b c h w")
        return self.weights[0] * y + self.weights[1] * x


class _Block(nn.Module):
    """x = GN(x); x = x + EISA(x); x = GN(x); x = x + FFN(x) (the toolbox's residuals start from the normalised x)."""

    def __init__(self, dim: int, side: int, mlp_ratio: int, drop_path: float) -> None:
        super().__init__()
        groups = 8 if dim == 440 else 16  # as the toolbox (440 is not a multiple of 16)
        hidden = mlp_ratio * dim
        self.norm1, self.attn = nn.GroupNorm(groups, dim), _EISA(dim, side)
        self.norm2 = nn.GroupNorm(groups, dim)
        self.ffn = nn.Sequential(
            nn.Conv2d(dim, hidden, 1, bias=False), nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False), nn.GELU(),
            nn.Conv2d(hidden, dim, 1, bias=False),
        )
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, E, s, s) -> same
        x = self.norm1(x)
        x = x + self.drop_path(self.attn(x))
        x = self.norm2(x)
        return x + self.drop_path(self.ffn(x))


def _conv_bn_gelu(cin: int, cout: int, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, groups=groups), nn.BatchNorm2d(cout), nn.GELU()]


class DCTN(nn.Module):
    def __init__(
        self,
        bands: int,
        num_classes: int,
        window: int = 15,
        *,
        depths: tuple[int, int, int, int] = (2, 2, 5, 3),
        width: int = 512,  # stages 3-4 and the fused features
        mlp_ratio: int = 3,
        drop_path: float = 0.1,
        embed: EmbedSize | None = None,  # the embedding's (G, K, D); default: the toolbox's, by band count
    ) -> None:
        super().__init__()
        size = embed or embed_size(bands)
        dim = size.dim  # E: 440 on Indian Pines, 320 on Pavia University
        side = (window - 3) // 2 + 1  # grid after the embedding's stride-2 convolution: 7 for 15x15 windows
        self.embed = _MDCP(bands, size)
        n = sum(depths)
        rates = [drop_path * i / max(n - 1, 1) for i in range(n)]  # stochastic depth by global block index
        split = depths[0] + depths[1]  # stages 1-2 share width E and grid; stages 3-4 share width and grid too
        self.stage12 = nn.Sequential(*(_Block(dim, side, mlp_ratio, r) for r in rates[:split]))
        self.transition = nn.Conv2d(dim, width, 2, stride=2)
        self.stage34 = nn.Sequential(*(_Block(width, side // 2, mlp_ratio, r) for r in rates[split:]))
        self.conv_branch = nn.Sequential(
            *_conv_bn_gelu(dim, 128), *_conv_bn_gelu(128, 128, groups=128),
            *_conv_bn_gelu(128, 256), nn.MaxPool2d(2), *_conv_bn_gelu(256, 256),
            *_conv_bn_gelu(256, width), *_conv_bn_gelu(width, width, groups=width),
        )
        self.skip = nn.Conv2d(dim, width, 2, stride=2)  # the embedding, brought to the last stage's grid and width
        self.fuse = nn.Conv2d(3 * width, width, 1)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, w, w, C) -> (B, num_classes)
        emb = self.embed(x)  # (B, E, s, s)
        z = self.stage34(self.transition(self.stage12(emb)))  # (B, 512, s/2, s/2)
        y = self.fuse(torch.cat([self.conv_branch(emb), z, self.skip(emb)], dim=1))  # (B, 512, s/2, s/2)
        return self.head(self.norm(rearrange(y, "b c h w -> b (h w) c")).mean(dim=1))


register_baseline(BaselineSpec(
    name="dctn",
    build=DCTN,
    citation="Zhou et al., IEEE TGRS 62, 2024",
    source="authors' toolbox AllFever/DeepHyperX-DCTN (at a86d513: models.py get_model('DCTN'), datasets.py, "
           "train.txt; at 8b63316: vit_pytorch/DCTN.py)",
    window=15,
    pca_components={"default": 0},  # every band, min-max scaled
    epochs=200,
    batch_size=100,
    lr=1e-4,
))
