"""HiT: a spectral-adaptive 3-D convolutional embedding, then a Vision Permutator whose token mixer is convolutional.

Yang, Cao, Lu & Zhou, "Hyperspectral Image Transformer Classification Networks", IEEE TGRS 60:5528715, 2022. Read
from the DCTN authors' toolbox AllFever/DeepHyperX-DCTN, whose protocol the paper under reproduction follows. The HiT
authors' own DeepHyperX fork (xiachangxue/DeepHyperX) has the same backbone with other embeddings (a linear one in
vit_pytorch/hit.py, plain Conv3D in vit_pytorch/hit_conv3d.py) and, in models.py, a fixed width 480 and batch 64;
we follow the toolbox. Where each setting was read:

- toolbox vit_pytorch/hit.py, `PatchEmbed`: two "dynamic" 3-D convolutions (the paper's spectral-adaptive 3-D
  convolution), 1 -> 4 maps with kernel 3x3x3, stride 2 in all three axes, then 4 -> 8 with stride (2, 1, 1), both
  padding 1 and bias-free. Each mixes K = 4 standard-normal kernels with softmax(fc2(relu(fc1(mean of x))) / 4)
  (fc1: C_in -> 4 C_in + 1, fc2: -> 4, bias-free) and convolves not x but x re-weighted per map and band by
  sigmoid(conv1x1(relu(BN(conv3(band means))))) (C_in -> 4 C_in -> C_in, the last conv bias-free and zero at start).
  The 8 maps x ceil(ceil(bands / 2) / 2) bands become the channels of an 8x8 token grid (on 15x15 windows).
- toolbox vit_pytorch/hit.py, `HiT` and `ConvPermuteMLP`: four stages of 4, 3, 14, 3 pre-norm blocks; a 2x2 stride-2
  convolution to width 512 after stage 2 (4x4 tokens from then on); each block is x + mix(LN(x)), then
  x + MLP(LN(x)) (MLP ratio 3, GELU), with stochastic depth rising linearly from 0 to 0.1 over the 24 blocks. The
  mixer: a depthwise 1x3 convolution (along width), a depthwise 3x1 (along height) and a 1x1 convolution (across
  channels), all bias-free, weighted per channel by a softmax over the three from an MLP (C -> C/4 -> 3C) of their
  spatial mean, then a linear projection. Head: LayerNorm, mean over tokens, linear. Linear layers start from a
  truncated normal (std 0.02) with zero bias.
- toolbox models.py, `get_model("hit")`: 15x15 windows; stage widths (e, e, 512, 512) with e = 400 on Indian Pines,
  208 on Pavia University, 288 on Houston: exactly the width the embedding produces (8 x 50, 8 x 26, 8 x 36), which
  is how we set e for any band count; Adam, lr 1e-4; 100 epochs; batch 32.
- toolbox datasets.py: no PCA; every band, min-max scaled over the whole cube (`pca_components` 0 here).

Kept as in the code although it looks unintended: the mixer's output, laid out (B, C, H, W) in memory, is reshaped
to (B, H, W, C) without a permute, so the projection mixes a fixed shuffle of channels and positions. Left out: a 1x1
convolution per mixer (`conv`) and a Linear(368 -> classes) (`conv_cls_head`) that the toolbox builds but its forward
pass never calls (5,582,352 weights on Indian Pines). 51,231,305 parameters on Indian Pines (200 bands, 16 classes),
counted from those layer sizes; the paper under reproduction lists "51.23 MB": this count in millions, without the
unused weights (as torchsummary, which the toolbox's main.py prints, counts: it sees only modules that run). Its
1.17 GFLOPs are multiply-adds: `flops_per_sample` (2 per multiply-add) gives 2.336 G on Indian Pines.
Not carried over: the toolbox's LR schedule (StepLR x0.7 per 10
epochs in its `train()`, not `get_model`'s ReduceLROnPlateau), the 5% validation hold-out, the "undefined"
class-0 logit (17 outputs on Indian Pines there, 16 here), and the kernel-attention temperature schedule (never
called in the toolbox, so the temperature stays 4).

Provenance: AllFever/DeepHyperX-DCTN at commit 8b63316 (vit_pytorch/hit.py) and a86d513 (models.py,
datasets.py); xiachangxue/DeepHyperX at 53716b2 (vit_pytorch/hit.py), 19495be (vit_pytorch/hit_conv3d.py) and
27c8716 (models.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn

from ..layers import DropPath
from .spec import BaselineSpec, register_baseline


class _DynamicConv3d(nn.Module):
    """A 3-D convolution whose kernel is a per-sample softmax mix of K kernels, applied to band-reweighted input."""

    def __init__(self, in_maps: int, out_maps: int, stride: tuple[int, int, int], *, kernels: int = 4,
                 temperature: float = 4.0) -> None:
        super().__init__()
        self.stride, self.temperature = stride, temperature
        hidden = 4 * in_maps + 1
        self.kernel_attention = nn.Sequential(  # the authors' 1x1x1 Conv3d on the pooled input, i.e. Linear layers
            nn.Linear(in_maps, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, kernels, bias=False),
        )
        self.band_attention = nn.Sequential(  # on (B, C_in, D) band means: the authors' Conv3d (3, 1, 1) and 1x1x1
            nn.Conv1d(in_maps, 4 * in_maps, 3, padding=1), nn.BatchNorm1d(4 * in_maps), nn.ReLU(),
            nn.Conv1d(4 * in_maps, in_maps, 1, bias=False), nn.Sigmoid(),
        )
        nn.init.zeros_(self.band_attention[3].weight)  # every band weighted 0.5 at start, as the authors
        self.weight = nn.Parameter(torch.randn(kernels, out_maps, in_maps, 3, 3, 3))  # standard normal, as theirs

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, D, H, W) -> (B, C_out, D', H', W')
        b = x.shape[0]
        mix = (self.kernel_attention(reduce(x, "b c d h w -> b c", "mean")) / self.temperature).softmax(dim=-1)
        bands = self.band_attention(reduce(x, "b c d h w -> b c d", "mean"))  # (B, C_in, D) in (0, 1)
        y = x * bands[..., None, None]
        weight = torch.einsum("bk,koidhw->boidhw", mix, self.weight)  # (B, C_out, C_in, 3, 3, 3): one kernel each
        out = F.conv3d(rearrange(y, "b c d h w -> 1 (b c) d h w"), rearrange(weight, "b o i d h w -> (b o) i d h w"),
                       stride=self.stride, padding=1, groups=b)  # each sample convolved with its own kernel
        return rearrange(out, "1 (b o) d h w -> b o d h w", b=b)


class _Mlp(nn.Sequential):
    def __init__(self, dim: int, hidden: int, out: int) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, out))


class _ConvPermuteMixer(nn.Module):
    """Depthwise 1x3 and 3x1 and a 1x1 convolution, blended per channel by a softmax over the three."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.along_w = nn.Conv2d(dim, dim, (1, 3), padding=(0, 1), groups=dim, bias=False)  # their mlp_c
        self.along_h = nn.Conv2d(dim, dim, (3, 1), padding=(1, 0), groups=dim, bias=False)  # their mlp_h
        self.across_c = nn.Conv2d(dim, dim, 1, bias=False)  # their mlp_w
        self.reweight = _Mlp(dim, dim // 4, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C) -> (B, H, W, C)
        b, h, w, c = x.shape
        x = rearrange(x, "b h w c -> b c h w")
        branches = torch.stack([self.along_w(x), self.along_h(x), self.across_c(x)])  # (3, B, C, H, W)
        a = self.reweight(reduce(branches, "three b c h w -> b c", "sum") / (h * w))  # (B, 3C) from the spatial mean
        a = rearrange(a, "b (c three) -> three b c 1 1", three=3).softmax(dim=0)
        x = (a * branches).sum(dim=0)  # (B, C, H, W)
        x = x.reshape(b, h, w, c)  # the authors' reshape: (B, C, H, W) memory read as (B, H, W, C), no permute
        return self.proj(x)


class _PermutatorBlock(nn.Module):
    def __init__(self, dim: int, mlp_ratio: int, drop_path: float) -> None:
        super().__init__()
        self.drop_path = DropPath(drop_path)
        self.norm1, self.mix = nn.LayerNorm(dim), _ConvPermuteMixer(dim)
        self.norm2, self.mlp = nn.LayerNorm(dim), _Mlp(dim, mlp_ratio * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C)
        x = x + self.drop_path(self.mix(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class _Downsample(nn.Module):
    """A patch x patch stride-patch convolution between stages (patch 1 only changes the width)."""

    def __init__(self, dim_in: int, dim_out: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(dim_in, dim_out, patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C_in) -> (B, H / patch, W / patch, C_out)
        return rearrange(self.proj(rearrange(x, "b h w c -> b c h w")), "b c h w -> b h w c")


def embedding_width(bands: int) -> int:
    """Token width after the embedding: 8 maps x the bands left after two stride-2 spectral convolutions."""
    return 8 * (((bands + 1) // 2 + 1) // 2)


class HiT(nn.Module):
    def __init__(
        self,
        bands: int,
        num_classes: int,
        window: int = 15,
        *,
        depths: tuple[int, ...] = (4, 3, 14, 3),
        widths: tuple[int | None, ...] = (None, None, 512, 512),  # None: the embedding's width
        downsample: tuple[bool, ...] = (False, True, False, False),  # halve the token grid after stage i
        mlp_ratio: int = 3,
        drop_path: float = 0.1,  # stochastic depth of the last block
    ) -> None:
        super().__init__()
        dims = [w or embedding_width(bands) for w in widths]
        self.embed = nn.Sequential(_DynamicConv3d(1, 4, (2, 2, 2)), _DynamicConv3d(4, 8, (2, 1, 1)))
        total = sum(depths)
        rates = [drop_path * i / max(total - 1, 1) for i in range(total)]  # rising linearly over all blocks
        stages: list[nn.Module] = []
        for i, depth in enumerate(depths):
            done = sum(depths[:i])
            stages.extend(_PermutatorBlock(dims[i], mlp_ratio, rates[done + j]) for j in range(depth))
            if i + 1 < len(depths) and (downsample[i] or dims[i] != dims[i + 1]):
                stages.append(_Downsample(dims[i], dims[i + 1], 2 if downsample[i] else 1))
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(dims[-1])
        self.head = nn.Linear(dims[-1], num_classes)
        for m in [*self.stages.modules(), self.norm, self.head]:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, w, w, C) -> (B, num_classes)
        x = self.embed(rearrange(x, "b h w c -> b 1 c h w"))  # (B, 8, D', H', W'), H' = ceil(w / 2)
        x = rearrange(x, "b f d h w -> b h w (f d)")  # maps x bands become the channels of an H' x W' grid
        x = self.stages(x)  # (B, H'', W'', 512)
        return self.head(reduce(self.norm(x), "b h w c -> b c", "mean"))


register_baseline(BaselineSpec(
    name="hit",
    build=HiT,
    citation="Yang et al., IEEE TGRS 2022",
    source="DCTN authors' toolbox AllFever/DeepHyperX-DCTN (8b63316: vit_pytorch/hit.py; a86d513: models.py "
           "get_model('hit'), datasets.py); backbone checked against the HiT authors' xiachangxue/DeepHyperX "
           "(19495be: vit_pytorch/hit_conv3d.py)",
    window=15,
    pca_components={"default": 0},  # every band, min-max scaled
    epochs=100,
    batch_size=32,
    lr=1e-4,
))
