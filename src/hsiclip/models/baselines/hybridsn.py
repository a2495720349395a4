"""HybridSN: a 3-D then 2-D convolutional network.

Roy, Krishna, Dubey & Chaudhuri, "HybridSN: Exploring 3-D–2-D CNN Feature Hierarchy for Hyperspectral Image
Classification", IEEE GRSL 17(2):277-281, 2019. Sizes and training settings from the authors' notebook
(gokriznastic/HybridSN, Hybrid-Spectral-Net.ipynb): 25x25 windows of whitened PCA (30 components on Indian Pines,
15 elsewhere); Conv3D 8@3x3x7, 16@3x3x5, 32@3x3x3; Conv2D 64@3x3; Dense 256 and 128 with dropout 0.4; Adam
lr 1e-3 with Keras decay 1e-6 (not applied here: over 100 epochs it lowers the rate by under 0.1%); batch 256;
100 epochs. 5,122,176 parameters on Indian Pines (the notebook's summary).

Provenance: gokriznastic/HybridSN at commit adf4383 (Hybrid-Spectral-Net.ipynb).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from .spec import BaselineSpec, register_baseline


class HybridSN(nn.Module):
    def __init__(self, bands: int, num_classes: int, window: int = 25) -> None:
        super().__init__()
        self.conv3d = nn.Sequential(  # kernels are (spectral, height, width)
            nn.Conv3d(1, 8, (7, 3, 3)), nn.ReLU(),
            nn.Conv3d(8, 16, (5, 3, 3)), nn.ReLU(),
            nn.Conv3d(16, 32, (3, 3, 3)), nn.ReLU(),
        )
        depth, side = bands - 12, window - 6  # each valid convolution trims its kernel size - 1
        self.conv2d = nn.Sequential(nn.Conv2d(32 * depth, 64, 3), nn.ReLU())
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * (side - 2) ** 2, 256), nn.ReLU(), nn.Dropout(0.4),
            nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.4),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, w, w, C) -> (B, num_classes)
        x = self.conv3d(rearrange(x, "b h w c -> b 1 c h w"))  # (B, 32, C - 12, w - 6, w - 6)
        x = rearrange(x, "b f d h w -> b (f d) h w")  # spectral features stacked as channels for the 2-D stage
        return self.head(self.conv2d(x))


register_baseline(BaselineSpec(
    name="hybridsn",
    build=HybridSN,
    citation="Roy et al., IEEE GRSL 2019",
    source="authors' notebook gokriznastic/HybridSN at adf4383 (Hybrid-Spectral-Net.ipynb)",
    window=25,
    pca_components={"indian_pines": 30, "default": 15},
    epochs=100,
    batch_size=256,
    lr=1e-3,
))
