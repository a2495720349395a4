"""3D-CNN: three stages of 3-D convolution, each halving the spectral depth with a strided 3-D convolution.

The "3D-CNN" row of the comparison, which the paper cites as Yang, Ye, Li, Lau, Zhang & Huang, "Hyperspectral
image classification with deep learning models", IEEE TGRS 56(9):5408-5423, 2018, and which it evaluates under the
protocol of Zhou et al. (DCTN, IEEE TGRS 2024), whose toolbox is the DeepHyperX fork AllFever/DeepHyperX-DCTN. Its
models.py builds `get_model("conv3d")` from `conv3d.C3DEtAl`; conv3d.py itself is not in our copy of that fork, so
it was read from xiachangxue/DeepHyperX (a DeepHyperX fork whose README cites Xiaofei Yang's papers, this one first,
and whose models.py has the same `get_model("conv3d")` entry). The class's docstring there names Sharma et al. (a
copied header); the 2018 paper's text was not available to check the layers against. Why this network is the
paper's row: on Indian Pines (200 bands, 15x15 windows) it costs 132.6 M multiply-adds per pixel, the paper's
"0.13 GFLOPs" if counted as multiply-adds, and it has 1,453,628 parameters where the paper prints "1.54" (the same
digits, transposed). The toolbox's other Yang-labelled model, `get_model("yang")` (yang.Yangnew), has over 3 M
parameters on Indian Pines (one of its 2-D convolutions, 3,400 -> 100 channels 3x3, alone has 3,060,100).
Where each setting was read:

- conv3d.py (xiachangxue/DeepHyperX), classes `Conv3` and `C3DEtAl`: on the (1, bands, w, w) cube, three stages
  of Conv3d 3x3x3 (padding 1) + BatchNorm3d + ReLU, then a Conv3d 3x3x3 with stride (2, 1, 1) and padding 1 that
  halves the spectral depth (named "avgpool", no activation after it); 4, 8 and 16 feature maps; flatten; one
  Linear to the classes. PyTorch's default initialisation (the file's init loop only touches 2-D layers).
  `Conv3` also builds a fourth stage (Conv3d 256 -> 512, BatchNorm2d) that its forward never calls: left out here,
  so it adds none of its 3,539,968 parameters.
- models.py (AllFever/DeepHyperX-DCTN), `get_model("conv3d")`: 15x15 windows, Adam at lr 1e-4, batch 100, and the
  toolbox-wide default of 100 epochs.
- datasets.py (AllFever/DeepHyperX-DCTN): no PCA; every band, min-max scaled over the whole cube.

Not carried over: the toolbox's `train()` replaces whatever scheduler `get_model` sets by StepLR (x0.7 every
10 epochs), and its main.py holds out 5% of the training pixels for validation; our trainer does neither.

Provenance: xiachangxue/DeepHyperX at commit 27c8716 (conv3d.py, models.py); AllFever/DeepHyperX-DCTN at
commit a86d513 (models.py, datasets.py, main.py).
"""

from __future__ import annotations

import itertools

import torch
from einops import rearrange
from torch import nn

from .spec import BaselineSpec, register_baseline


def _stage(cin: int, cout: int) -> nn.Sequential:
    """Conv + BN + ReLU at full size, then a strided conv that halves the spectral depth (kernels are (d, h, w))."""
    return nn.Sequential(
        nn.Conv3d(cin, cout, 3, padding=1), nn.BatchNorm3d(cout), nn.ReLU(),
        nn.Conv3d(cout, cout, 3, stride=(2, 1, 1), padding=1),
    )


class CNN3D(nn.Module):
    def __init__(self, bands: int, num_classes: int, window: int = 15, *, widths: tuple[int, ...] = (4, 8, 16)) -> None:
        super().__init__()
        chans = (1, *widths)
        self.features = nn.Sequential(*(_stage(cin, cout) for cin, cout in itertools.pairwise(chans)))
        depth = bands
        for _ in widths:
            depth = (depth + 1) // 2  # stride 2, kernel 3, padding 1: ceil(d / 2); 200 -> 100 -> 50 -> 25
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * depth * window * window, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, w, w, C) -> (B, num_classes)
        x = self.features(rearrange(x, "b h w c -> b 1 c h w"))  # (B, 16, ceil(C / 8), w, w)
        return self.head(x)  # flattened as (feature, band, row, column)


register_baseline(BaselineSpec(
    name="cnn3d",
    build=CNN3D,
    citation="Yang et al., IEEE TGRS 2018 (as the DCTN toolbox's conv3d)",
    source="DCTN authors' toolbox AllFever/DeepHyperX-DCTN at a86d513 (models.py get_model('conv3d'), "
           "datasets.py) with conv3d.py (C3DEtAl) read from xiachangxue/DeepHyperX at 27c8716",
    window=15,
    pca_components={"default": 0},  # every band, min-max scaled
    epochs=100,
    batch_size=100,
    lr=1e-4,
))
