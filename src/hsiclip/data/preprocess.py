"""Spectral PCA, fitted once and stored with the run so that evaluation and mapping apply the same transform."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

from ..errors import DataError


@dataclass
class SpectralPCA:
    """x -> (x - mean) @ components.T [/ sqrt(explained_variance) when whitened], per pixel."""

    mean: np.ndarray  # (B,)
    components: np.ndarray  # (K, B)
    scale: np.ndarray  # (K,) divisor per component (1 when not whitened)

    @classmethod
    def fit(cls, pixels: np.ndarray, n_components: int, whiten: bool = True, seed: int = 0) -> SpectralPCA:
        """Fit on (N, B) pixel spectra; deterministic (full SVD)."""
        n, bands = pixels.shape
        if n_components > min(n, bands):
            raise DataError(f"cannot keep {n_components} PCA components from {n} pixels of {bands} bands")
        pca = PCA(n_components=n_components, whiten=False, svd_solver="full", random_state=seed)
        pca.fit(pixels.astype(np.float64))
        scale = np.sqrt(pca.explained_variance_) if whiten else np.ones(n_components)
        scale = np.where(scale > 0, scale, 1.0)
        return cls(pca.mean_.astype(np.float32), pca.components_.astype(np.float32), scale.astype(np.float32))

    @classmethod
    def fit_cube(cls, cube: np.ndarray, n_components: int, whiten: bool = True, seed: int = 0) -> SpectralPCA:
        """Fit on every pixel of an (H, W, B) cube (the paper protocol)."""
        return cls.fit(cube.reshape(-1, cube.shape[-1]), n_components, whiten=whiten, seed=seed)

    @property
    def bands(self) -> int:
        return self.mean.shape[0]

    def transform(self, cube: np.ndarray, chunk: int = 65536) -> np.ndarray:
        """(H, W, B) cube -> (H, W, K) float32, in pixel chunks so that memory stays at one output cube."""
        h, w, b = cube.shape
        if b != self.bands:
            raise DataError(f"the cube has {b} bands but the model was trained on {self.bands}")
        flat = cube.reshape(-1, b)
        out = np.empty((flat.shape[0], self.components.shape[0]), dtype=np.float32)
        proj = (self.components / self.scale[:, None]).T  # (B, K)
        for s in range(0, flat.shape[0], chunk):
            out[s : s + chunk] = (flat[s : s + chunk].astype(np.float32) - self.mean) @ proj
        return out.reshape(h, w, -1)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "components": self.components, "scale": self.scale}

    @classmethod
    def from_state_dict(cls, state: dict[str, np.ndarray]) -> SpectralPCA:
        return cls(*(np.asarray(state[k], dtype=np.float32) for k in ("mean", "components", "scale")))
