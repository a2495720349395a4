"""Shared fixtures: a tiny synthetic scene with its prompts, the real data folder, a session text-embedding cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from hsiclip.data.scenes import Scene

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real scenes: $HSICLIP_DATA_DIR (CI sets it to ../shared/data), else ../shared/data if present."""
    d = Path(os.environ.get("HSICLIP_DATA_DIR") or REPO.parent / "shared" / "data")
    if not (d / "Indian_pines_corrected.mat").is_file():
        pytest.skip(f"real Indian Pines not found in {d}")
    return d


@pytest.fixture(scope="session")
def text_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for the whole session, so the text encoder loads once per prompt set."""
    return tmp_path_factory.mktemp("cache")


def make_tiny_scene(h: int = 24, w: int = 24, bands: int = 30, seed: int = 0) -> Scene:
    """Three classes in vertical stripes, each with its own mean spectrum plus noise; 0 = unlabelled border."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((h, w), dtype=np.int64)
    labels[2:-2, 2:-2] = 1 + (np.arange(w - 4) * 3 // (w - 4))[None, :]
    means = rng.uniform(0.2, 1.0, size=(4, bands))
    cube = means[labels] + 0.05 * rng.standard_normal((h, w, bands))
    return Scene("tiny", cube.astype(np.float32), labels, ("Corn", "Asphalt", "Water"), "synthetic")


TINY_PROMPTS = """
scene = "tiny"
[[classes]]
label = 1
name = "Corn"
short = "Corn, a green row crop."
descriptive = "Rows of young corn plants over bare soil, seen from above, with strong near-infrared reflectance."
[[classes]]
label = 2
name = "Asphalt"
short = "Asphalt, a dark paved surface."
descriptive = "Dark grey asphalt roads and parking lots with low, flat reflectance across the spectrum."
[[classes]]
label = 3
name = "Water"
short = "Water, a dark absorbing surface."
descriptive = "Open water that absorbs near-infrared light and looks almost black in infrared bands."
"""


@pytest.fixture
def tiny_scene() -> Scene:
    return make_tiny_scene()


@pytest.fixture
def tiny_prompts(tmp_path: Path) -> Path:
    p = tmp_path / "tiny_prompts.toml"
    p.write_text(TINY_PROMPTS)
    return p
