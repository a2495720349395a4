"""Shared fixtures: a tiny synthetic scene with its prompts, the real data folder, a session text-embedding cache,
and a stub text encoder ("stub": hashed bag-of-words vectors, no model to load) for the fast tier."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from hsiclip.data.scenes import Scene, get_scene, load_scene
from hsiclip.errors import HsiclipError
from hsiclip.text.encoders import ENCODERS, EncoderSpec

STUB_DIM = 32


class StubEncoder:
    """Texts -> L2-normalised hashed bag-of-words vectors: deterministic, distinct per prompt, instant."""

    def encode(self, texts: list[str], **_: object) -> np.ndarray:
        out = np.zeros((len(texts), STUB_DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, int(hashlib.sha256(word.encode()).hexdigest(), 16) % STUB_DIM] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


if "stub" not in ENCODERS:
    ENCODERS.register("stub", EncoderSpec("stub", "stub", STUB_DIM, 0, "stub", "English", load=StubEncoder))

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def one_thread() -> Iterator[None]:
    """Tiny models train far faster on one thread than on two cores shared with other work (OpenMP spinning); the
    committed records were measured on one thread too."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the real Indian Pines .mat files: $HSICLIP_DATA_DIR (CI sets it to ../shared/data), else
    ../shared/data, else the copy inside the TensorLy wheel (what `hsiclip train` itself falls back on), written out
    as the two public .mat files."""
    d = Path(os.environ.get("HSICLIP_DATA_DIR") or REPO.parent / "shared" / "data")
    info = get_scene("indian_pines")
    if all((d / f.filename).is_file() for f in (info.cube, info.gt)):
        return d
    try:
        scene = load_scene("indian_pines")  # no folders: the packaged copy, then the download cache
    except HsiclipError:
        pytest.skip(f"the real Indian Pines scene is not here: put {info.cube.filename} and {info.gt.filename} "
                    "in a folder named by $HSICLIP_DATA_DIR, or pip install tensorly (its wheel ships a copy)")
    out = tmp_path_factory.mktemp("indian_pines")
    scipy.io.savemat(out / info.cube.filename, {info.cube.key: scene.cube.astype(np.uint16)})
    scipy.io.savemat(out / info.gt.filename, {info.gt.key: scene.labels.astype(np.uint8)})
    return out


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


@pytest.fixture
def tiny_recipe(tmp_path: Path) -> Path:
    """The paper recipe shrunk for the tiny scene: 9x9 windows, 2 blocks, 3 epochs, the stub encoder."""
    p = tmp_path / "tiny_recipe.toml"
    p.write_text('name = "tiny"\n[data]\npca_components = 8\n[model]\nwindow = 9\ndepth = 2\nheads = 4\n'
                 '[text]\nencoder = "stub"\n[train]\nepochs = 3\nbatch_size = 16\n')
    return p


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
def tiny_prompts(tmp_path: Path) -> Path:
    p = tmp_path / "tiny_prompts.toml"
    p.write_text(TINY_PROMPTS)
    return p


@pytest.fixture
def tiny_scene(tiny_prompts: Path) -> Scene:
    """The tiny scene with its class file as its prompts."""
    scene = make_tiny_scene()
    scene.prompts = tiny_prompts
    return scene


def _shrunk(original):  # type: ignore[no-untyped-def]
    def small(self, scene, seed=0, epochs=None, **overrides):  # type: ignore[no-untyped-def]
        shrunk = {"model.window": 9, "model.depth": 2, "model.heads": 4, "text.encoder": "stub"}
        return original(self, scene, seed, epochs or 3, **{**shrunk, **overrides})

    small.shrunk = True  # type: ignore[attr-defined]
    return small


@pytest.fixture
def small_recipes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every recipe of ours shrunk for the tiny scene (9x9 windows, 2 blocks of 4 heads, the stub encoder, 3 epochs
    unless a call asks for others); the baselines keep their settings (callers pass small `epochs`)."""
    from hsiclip.systems import VLMSystem

    monkeypatch.setattr(VLMSystem, "recipe", _shrunk(VLMSystem.recipe))


def ray_worker_setup() -> None:
    """What `small_recipes` and the stub encoder do, in a Ray worker process (its `worker_process_setup_hook`): a
    monkeypatch in the test process does not reach the workers. Importing this module registers the stub."""
    from hsiclip.systems import VLMSystem

    if not getattr(VLMSystem.recipe, "shrunk", False):
        VLMSystem.recipe = _shrunk(VLMSystem.recipe)  # type: ignore[method-assign]
