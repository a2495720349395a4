"""The Python API in one place: load a scene, train any system on it, reload a run, build a bare model.

    import hsiclip
    scene = hsiclip.load_scene("indian_pines")
    run = hsiclip.train(scene, "paper_indian_pines", seed=0, protocol="paper")
"""

from __future__ import annotations

from pathlib import Path

from .data.scenes import Scene, user_scene
from .data.scenes import load_scene as load_registered_scene
from .errors import ConfigError
from .paths import data_dirs, download_dir
from .pipeline import train
from .run import Run, load_run
from .systems import create_model, list_models
from .text.prompts import load_prompt_set


def load_scene(name: str | None = None, *, data_dir: Path | str | None = None, download: bool = False,
               verify: bool = True, progress: bool = True, cube: Path | str | None = None,
               labels: Path | str | None = None, classes: Path | str | None = None, cube_key: str | None = None,
               labels_key: str | None = None) -> Scene:
    """A registered scene by name (from `data_dir`, $HSICLIP_DATA_DIR, a packaged copy or the cache; `download`
    fetches missing files), or your own from a `cube` file, a `labels` raster and a `classes` file (TOML/YAML:
    names and descriptions, which become the prompts)."""
    own = [x is not None for x in (cube, labels, classes)]
    if any(own):
        if not all(own):
            raise ConfigError("your own scene needs all three of cube, labels and classes")
        assert cube is not None and labels is not None and classes is not None
        names = [p.name for p in load_prompt_set(classes)]
        scene = user_scene(cube, labels, names, name=name or Path(cube).stem, cube_key=cube_key,
                           labels_key=labels_key)
        scene.prompts = classes
        return scene
    if name is None:
        raise ConfigError("give a registered scene name (see `hsiclip scenes`) or cube, labels and classes")
    return load_registered_scene(name, data_dirs(data_dir), download_dir=download_dir(), download=download,
                                 verify=verify, progress=progress)


__all__ = ["Run", "Scene", "create_model", "list_models", "load_run", "load_scene", "train"]
