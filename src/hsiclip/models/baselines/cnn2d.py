"""2D-CNN: three 2-D convolutions over the full spectrum, max pooling, and two batch-normalised linear layers.

The "2D-CNN" row of the comparison, which the paper cites as Sharma, Diba, Tuytelaars & Van Gool, "Hyperspectral
CNN for image classification & band selection, with application to face recognition", KU Leuven tech report
KUL/ESAT/PSI/1604, 2016, and evaluates under the protocol of Zhou et al. (DCTN, IEEE TGRS 2024), whose toolbox is
the DeepHyperX fork AllFever/DeepHyperX-DCTN. That toolbox holds two 2-D CNNs. `get_model("sharma")` is
DeepHyperX's reading of Sharma et al. (conv 96@6x6 stride 2 over a 64x64 window, SGD at lr 0.05, batch 60,
30 epochs): 2,635,312 parameters on Indian Pines and about 0.63 G multiply-adds per pixel, which fits neither printed
number. `get_model("cnn2D")` (class `Cnn2D`) has 2,761,584 parameters on Indian Pines (200 bands, 16 classes, 15x15
windows), the paper's "2.76", so that is the network built here. Where each setting was read (AllFever/DeepHyperX-DCTN):

- models.py, class `Cnn2D`: Conv2d bands -> 64 1x1, then 64 -> 128 3x3 and 128 -> 256 3x3 (padding 1), each with
  BatchNorm and LeakyReLU (slope 0.01) and followed by one shared MaxPool2d(2, stride 2, padding 1), so 15 -> 8 ->
  5 -> 3; flatten; Linear -> 1024 + BatchNorm1d; Linear -> classes + BatchNorm1d (no activation or dropout between
  or after). Convolution weights drawn from N(0, 2 / (k * k * out_channels)); everything else PyTorch's default.
- models.py, `get_model("cnn2D")`: 15x15 windows, Adam at lr 1e-4, batch 32, 200 epochs.
- datasets.py: no PCA; every band, min-max scaled over the whole cube (`pca_components` 0 here, the same input).

Not carried over: the toolbox's `train()` replaces whatever scheduler `get_model` sets by StepLR (x0.7 every
10 epochs), and its main.py holds out 5% of the training pixels for validation; our trainer does neither. Its
BatchNorm1d layers cannot take a batch of one in training (the toolbox would fail on such a last batch); here
they use their running statistics for that one batch instead.

Provenance: AllFever/DeepHyperX-DCTN at commit a86d513 (models.py, datasets.py, main.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .spec import BaselineSpec, register_baseline


class _BatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d that normalises a training batch of one with its running statistics instead of failing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


def _conv_block(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2), nn.BatchNorm2d(cout), nn.LeakyReLU())


class CNN2D(nn.Module):
    def __init__(self, bands: int, num_classes: int, window: int = 15, *, width: int = 16) -> None:
        super().__init__()
        self.convs = nn.ModuleList([
            _conv_block(bands, 4 * width, 1),
            _conv_block(4 * width, 8 * width, 3),
            _conv_block(8 * width, 16 * width, 3),
        ])
        self.pool = nn.MaxPool2d(2, stride=2, padding=1)  # one module, applied after every block
        side = window
        for _ in self.convs:
            side = side // 2 + 1  # MaxPool2d(2, 2, padding 1): 15 -> 8 -> 5 -> 3
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * width * side * side, 1024), _BatchNorm1d(1024),
            nn.Linear(1024, num_classes), _BatchNorm1d(num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # as the toolbox: N(0, 2 / (k * k * out_channels)), biases left as built
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, w, w, C) -> (B, num_classes)
        x = rearrange(x, "b h w c -> b c h w")
        for conv in self.convs:
            x = self.pool(conv(x))  # (B, 64, 8, 8), (B, 128, 5, 5), (B, 256, 3, 3) for w = 15
        return self.head(x)  # flattened as (channel, row, column)


register_baseline(BaselineSpec(
    name="cnn2d",
    build=CNN2D,
    citation="Sharma et al., KU Leuven tech report KUL/ESAT/PSI/1604, 2016 (as the DCTN toolbox's cnn2D)",
    source="DCTN authors' toolbox AllFever/DeepHyperX-DCTN at a86d513 (models.py get_model('cnn2D') and class Cnn2D, "
           "datasets.py)",
    window=15,
    pca_components={"default": 0},  # every band, min-max scaled
    epochs=200,
    batch_size=32,
    lr=1e-4,
))
