"""Spectral preprocessing, fitted once and stored with the run so that evaluation and mapping apply it again.

`fit_preprocessing` is the one place it is fitted: whitened PCA to K components, or (K = 0) every band min-max
scaled, on every pixel of the scene or on the pixels the protocol allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

from ..errors import DataError

CHUNK = 65536  # pixels transformed at a time, so that memory stays at one output cube


def _check_bands(cube: np.ndarray, bands: int) -> None:
    if cube.shape[-1] != bands:
        raise DataError(f"the cube has {cube.shape[-1]} bands but the model was trained on {bands}")


@dataclass
class SpectralPCA:
    """x -> (x - mean) @ components.T / sqrt(explained_variance), per pixel (whitened, as the SSFTT code does)."""

    mean: np.ndarray  # (B,)
    components: np.ndarray  # (K, B)
    scale: np.ndarray  # (K,) divisor per component

    @classmethod
    def fit(cls, pixels: np.ndarray, n_components: int, seed: int = 0) -> SpectralPCA:
        """Fit on (N, B) pixel spectra; deterministic (full SVD)."""
        n, bands = pixels.shape
        if n_components > min(n, bands):
            raise DataError(f"cannot keep {n_components} PCA components from {n} pixels of {bands} bands")
        pca = PCA(n_components=n_components, whiten=False, svd_solver="full", random_state=seed)
        pca.fit(pixels.astype(np.float64))
        scale = np.sqrt(pca.explained_variance_)
        scale = np.where(scale > 0, scale, 1.0)
        return cls(pca.mean_.astype(np.float32), pca.components_.astype(np.float32), scale.astype(np.float32))

    @property
    def bands(self) -> int:
        return self.mean.shape[0]

    @property
    def channels(self) -> int:
        """Channels of the transformed cube."""
        return self.components.shape[0]

    def transform(self, cube: np.ndarray) -> np.ndarray:
        """(H, W, B) cube -> (H, W, K) float32."""
        _check_bands(cube, self.bands)
        h, w, b = cube.shape
        flat = cube.reshape(-1, b)
        out = np.empty((flat.shape[0], self.channels), dtype=np.float32)
        proj = (self.components / self.scale[:, None]).T  # (B, K)
        for s in range(0, flat.shape[0], CHUNK):
            out[s : s + CHUNK] = (flat[s : s + CHUNK].astype(np.float32) - self.mean) @ proj
        return out.reshape(h, w, -1)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "components": self.components, "scale": self.scale}


@dataclass
class MinMaxScaler:
    """Every band kept, scaled by one range over all bands and pixels (the DeepHyperX toolbox's input)."""

    low: float
    high: float
    bands: int

    @classmethod
    def fit(cls, pixels: np.ndarray) -> MinMaxScaler:
        return cls(float(pixels.min()), float(pixels.max()), pixels.shape[1])

    @property
    def channels(self) -> int:
        return self.bands

    def transform(self, cube: np.ndarray) -> np.ndarray:
        _check_bands(cube, self.bands)
        return ((cube.astype(np.float32) - self.low) / max(self.high - self.low, 1e-12)).astype(np.float32)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"low": np.float64(self.low), "high": np.float64(self.high), "bands": np.int64(self.bands)}


Preprocessing = SpectralPCA | MinMaxScaler


def fit_preprocessing(cube: np.ndarray, components: int, fit_index: np.ndarray | None = None,
                      seed: int = 0) -> Preprocessing:
    """Whitened PCA to `components` (0: min-max scaling) fitted on every pixel or on the flat pixels `fit_index`."""
    pixels = cube.reshape(-1, cube.shape[-1])
    fit_on = pixels if fit_index is None else pixels[fit_index]
    if components > pixels.shape[1]:
        raise DataError(f"the recipe asks for {components} PCA components but the cube has only {pixels.shape[1]} "
                        "bands; lower data.pca_components")
    if not np.ptp(fit_on, axis=0).any():
        raise DataError("every band is constant over the pixels the preprocessing is fitted on (an all-zero or "
                        "flat cube?): there is nothing to classify from")
    return SpectralPCA.fit(fit_on, components, seed=seed) if components else MinMaxScaler.fit(fit_on)


def load_preprocessing(state: dict[str, np.ndarray]) -> Preprocessing:
    """The inverse of `state_dict` for either kind."""
    if "components" in state:
        return SpectralPCA(*(np.asarray(state[k], dtype=np.float32) for k in ("mean", "components", "scale")))
    return MinMaxScaler(float(state["low"]), float(state["high"]), int(state["bands"]))
