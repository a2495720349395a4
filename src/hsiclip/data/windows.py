"""Windows around pixels, gathered per batch from the zero-padded cube in one indexing operation.

Never materialises all windows: a Pavia University-sized scene would need gigabytes for them.
"""

from __future__ import annotations

import numpy as np
import torch


class WindowSampler:
    """Holds the zero-padded (H + 2r, W + 2r, K) cube and cuts (B, w, w, K) windows for flat pixel indices."""

    def __init__(self, cube: np.ndarray, window: int, device: torch.device | str = "cpu") -> None:
        h, w, _ = cube.shape
        self.shape = (h, w)
        self.window = window
        r = window // 2
        padded = np.pad(cube, ((r, r), (r, r), (0, 0)))  # zero padding at the borders, as in the paper
        self.padded = torch.from_numpy(np.ascontiguousarray(padded, dtype=np.float32)).to(device)
        offsets = torch.arange(window, device=self.padded.device)
        self._dy = offsets.view(1, window, 1)
        self._dx = offsets.view(1, 1, window)

    def __call__(self, flat_index: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Flat pixel indices (B,) into the unpadded H*W grid -> windows (B, w, w, K) centred on them."""
        idx = torch.as_tensor(flat_index, device=self.padded.device)
        rows = torch.div(idx, self.shape[1], rounding_mode="floor").view(-1, 1, 1)
        cols = (idx % self.shape[1]).view(-1, 1, 1)
        # the window centred at (r, c) of the original starts at (r, c) of the padded cube
        return self.padded[rows + self._dy, cols + self._dx]  # (B, w, w, K)
