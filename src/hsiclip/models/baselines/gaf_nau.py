"""GAF-NAU: each pixel's spectrum as a Gramian Angular Field image, classified by a neighbourhood-attention U-Net.

Paheding, Reyes, Kasaragod & Oommen, "GAF-NAU: Gramian Angular Field Encoded Neighborhood Attention U-Net for
Pixel-Wise Hyperspectral Image Classification", CVPR Workshops 2022, pp. 409-417 (arXiv 2204.10099). Pixel-wise:
window 1, the centre pixel's spectrum only.

Where each part comes from (read this before trusting the numbers):

- The paper's text and its official code (github.com/MAIN-Lab/GAF-NAU, named in the abstract) were not reachable
  from our index, so the GAF size, training settings and the exact network could not be read from them. What the
  abstract fixes: the 1-D pixel vector becomes a 2-D angular image by the Gramian Angular Field, which a
  neighbourhood-attention U-Net classifies, suppressing irrelevant angular features.
- GAF (the standard Gramian Angular Summation Field): the spectrum rescaled to [-1, 1] per pixel, phi = arccos(x),
  G_ij = cos(phi_i + phi_j). Computed here, on the fly and differentiably, as x_i x_j - sqrt(1 - x_i^2) sqrt(1 - x_j^2)
  (the same value), whose gradients stay finite at x = +-1 where arccos's do not.
- The network is the same group's NAU-Net (Neighbourhood Attention U-Net), read from a public copy of its code in our
  index (classes `NAU_Net`, `DecoderBlock`, `Conv2dReLU`; its repository could not be identified): a ResNet-50
  encoder; a shallow Conv3x3(32) + BN + ReLU branch at full resolution; decoder blocks (nearest x2 upsampling,
  concatenation with the skip, two Conv3x3 + BN + ReLU) of widths 256, 128, 64, 64, 32; a final Conv3x3 to the
  classes. Neighbourhood attention on the skips at 1/2, 1/4 and 1/8 resolution (none at 1/16, "as in the updated
  NAU-Net"): F <- alpha * A * F + beta * F, alpha = 1 and beta = 0 at start, A the attention map average-pooled to
  the skip's resolution. NAU-Net's map is a spectral-index band; here it is the GAF image itself (our reading).
- Our choices, not the authors': the GAF side is 64 (a multiple of the encoder's stride 32; every spectrum is
  linearly resampled to 64 points). At the band count (224 after rounding up on Indian Pines) one sample costs
  21.2 GFLOPs, which puts test inference alone at about an hour per seed on our 2-core CPU; at 64 it is 1.7 GFLOPs,
  the order of DCTN's. `side=None` gives the band count rounded up to a multiple of 32;
  one input channel and no ImageNet weights (NAU-Net loads ImageNet ResNet-50 weights; trained from scratch here);
  class logits are the spatial mean of the final class map (NAU-Net is a segmentation net); no PCA (every band,
  min-max scaled over the cube: a GAF encodes an ordered series, which whitened PCA components are not);
  Adam lr 1e-3, batch 64, 100 epochs (SSFTT's settings in this package).

32,614,326 parameters on Indian Pines (200 bands, 16 classes), counted from those layer sizes.

Provenance: no repository commit can be named. The official MAIN-Lab/GAF-NAU code was not reachable, and the
NAU-Net copy that the network was read from sits in our index without its repository's name.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .spec import BaselineSpec, register_baseline


def gramian_angular_field(spectrum: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(B, L) spectra -> (B, L, L) fields cos(phi_i + phi_j), phi = arccos of each spectrum scaled to [-1, 1]."""
    lo = spectrum.amin(dim=1, keepdim=True)
    hi = spectrum.amax(dim=1, keepdim=True)
    x = 2 * (spectrum - lo) / (hi - lo + eps) - 1  # per pixel, to [-1, 1]
    s = torch.sqrt((1 - x * x).clamp(min=eps))  # sin(phi), clamped so its gradient is finite at x = +-1
    return torch.einsum("bi,bj->bij", x, x) - torch.einsum("bi,bj->bij", s, s)


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class _Bottleneck(nn.Module):
    """ResNet-50 bottleneck (stride on the 3x3 convolution): 1x1 -> 3x3 -> 1x1 (x4 width), plus the shortcut."""

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = 4 * width
        self.body = nn.Sequential(
            _conv_bn(cin, width, 1), _conv_bn(width, width, 3, stride), _conv_bn(width, cout, 1, relu=False),
        )
        self.shortcut = _conv_bn(cin, cout, 1, stride, relu=False) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


def _stage(cin: int, width: int, blocks: int, stride: int) -> nn.Sequential:
    return nn.Sequential(*(_Bottleneck(cin if i == 0 else 4 * width, width, stride if i == 0 else 1)
                           for i in range(blocks)))


class _DecoderBlock(nn.Module):
    """Nearest x2 upsampling, concatenation with the skip, two Conv3x3 + BN + ReLU."""

    def __init__(self, cin: int, skip: int, cout: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(_conv_bn(cin + skip, cout, 3), _conv_bn(cout, cout, 3))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.convs(torch.cat([x, skip], dim=1))


class GAFNAU(nn.Module):
    def __init__(
        self,
        bands: int,
        num_classes: int,
        window: int = 1,
        *,
        base: int = 64,
        blocks: tuple[int, int, int, int] = (3, 4, 6, 3),
        stride: int = 32,
        side: int | None = 64,
    ) -> None:
        super().__init__()
        # GAF side: divisible by the encoder's total stride; None = the band count rounded up
        self.side = stride * math.ceil((side or bands) / stride)
        # ResNet-50 encoder (base 64, blocks 3-4-6-3) on the 1-channel GAF; layer k's output is at 1 / 2^(k+1) scale
        c = [base, 4 * base, 8 * base, 16 * base, 32 * base]  # channels of layers 0..4: 64, 256, 512, 1024, 2048
        self.layer0 = _conv_bn(1, c[0], 7, 2)
        self.layer1 = nn.Sequential(nn.MaxPool2d(3, 2, 1), _stage(c[0], base, blocks[0], 1))
        self.layer2 = _stage(c[1], 2 * base, blocks[1], 2)
        self.layer3 = _stage(c[2], 4 * base, blocks[2], 2)
        self.layer4 = _stage(c[3], 8 * base, blocks[3], 2)
        d = [4 * base, 2 * base, base, base, base // 2]  # decoder widths: 256, 128, 64, 64, 32
        self.shallow = _conv_bn(1, d[4], 3)
        self.decode3, self.decode2 = _DecoderBlock(c[4], c[3], d[0]), _DecoderBlock(d[0], c[2], d[1])
        self.decode1, self.decode0 = _DecoderBlock(d[1], c[1], d[2]), _DecoderBlock(d[2], c[0], d[3])
        self.decode_full = _DecoderBlock(d[3], d[4], d[4])
        self.classify = nn.Conv2d(d[4], num_classes, 3, padding=1)
        # neighbourhood attention on the skips at 1/2, 1/4, 1/8: F <- alpha * pool(A) * F + beta * F
        self.alpha = nn.Parameter(torch.ones(3))
        self.beta = nn.Parameter(torch.zeros(3))
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.bias is None:  # the encoder's and decoder's convolutions, as ResNet's
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, w, w, C) windows -> (B, 1, S, S) GAF images of the centre pixels' spectra."""
        w = x.shape[1]
        spectrum = x[:, w // 2, w // 2, :]  # (B, C): pixel-wise, the centre pixel only
        series = rearrange(spectrum, "b c -> b 1 c")  # one channel, for 1-D resampling
        resampled = F.interpolate(series, size=self.side, mode="linear", align_corners=True)[:, 0]  # (B, S)
        return rearrange(gramian_angular_field(resampled), "b i j -> b 1 i j")

    def _attend(self, k: int, skip: torch.Tensor, gaf: torch.Tensor) -> torch.Tensor:
        attention = F.avg_pool2d(gaf, 2 ** (k + 1))  # (B, 1, h, w): the GAF averaged over neighbourhoods
        return self.alpha[k] * attention * skip + self.beta[k] * skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, w, w, C) -> (B, num_classes)
        gaf = self.encode(x)  # (B, 1, S, S)
        f0 = self.layer0(gaf)  # (B, 64, S/2, S/2)
        f1 = self.layer1(f0)  # (B, 256, S/4, S/4)
        f2 = self.layer2(f1)  # (B, 512, S/8, S/8)
        f3 = self.layer3(f2)  # (B, 1024, S/16, S/16)
        y = self.decode3(self.layer4(f3), f3)  # (B, 256, S/16, S/16)
        y = self.decode2(y, self._attend(2, f2, gaf))  # (B, 128, S/8, S/8)
        y = self.decode1(y, self._attend(1, f1, gaf))  # (B, 64, S/4, S/4)
        y = self.decode0(y, self._attend(0, f0, gaf))  # (B, 64, S/2, S/2)
        y = self.decode_full(y, self.shallow(gaf))  # (B, 32, S, S)
        return self.classify(y).mean(dim=(2, 3))  # class map (B, K, S, S) averaged to (B, K)


register_baseline(BaselineSpec(
    name="gaf_nau",
    build=GAFNAU,
    citation="Paheding et al., CVPR Workshops 2022",
    source="paper abstract (arXiv 2204.10099; official code MAIN-Lab/GAF-NAU not reachable); network from the "
           "same group's NAU-Net code; GAF size, input and training settings our choice",
    window=1,
    pca_components={"default": 0},  # every band, min-max scaled
    epochs=100,
    batch_size=64,
    lr=1e-3,
))
