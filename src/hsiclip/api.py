"""The Python API in one place: load a scene, train any system on it, reload a run, build a bare model.

    import hsiclip
    scene = hsiclip.load_scene("indian_pines")
    run = hsiclip.train(scene, "paper_indian_pines", seed=0, protocol="paper")
"""

from __future__ import annotations

from pathlib import Path

from .data.scenes import Scene, same_files, user_scene
from .data.scenes import load_scene as load_registered_scene
from .errors import ConfigError, DataError
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
        if missing := [f"{part} {path}" for part, path in (("cube", cube), ("labels", labels), ("classes", classes))
                       if not Path(path).is_file()]:
            raise DataError(f"no such file: {'; '.join(missing)}")
        names = [p.name for p in load_prompt_set(classes)]
        scene = user_scene(cube, labels, names, name=name or Path(cube).stem, cube_key=cube_key,
                           labels_key=labels_key)
        scene.prompts = classes
        assert scene.files is not None
        scene.files["classes"] = str(Path(classes).resolve())
        return scene
    if name is None:
        raise ConfigError("give a registered scene name (see `hsiclip scenes`) or cube, labels and classes")
    return load_registered_scene(name, data_dirs(data_dir), download_dir=download_dir(), download=download,
                                 verify=verify, progress=progress)


def scene_of(run: Run, *, data_dir: Path | str | None = None, download: bool = False, verify: bool = True,
             progress: bool = True, cube: Path | str | None = None, labels: Path | str | None = None,
             classes: Path | str | None = None, cube_key: str | None = None,
             labels_key: str | None = None) -> Scene:
    """The scene `run` was trained on, to evaluate or map it again: its registered scene, or the user's own files
    that it recorded (read where they were, or from `cube`, `labels` and `classes` where they have moved), checked
    against the checksums recorded at training time."""
    files = run.scene_files
    if files is None:
        return load_scene(run.scene, data_dir=data_dir, download=download, verify=verify, progress=progress,
                          cube=cube, labels=labels, classes=classes, cube_key=cube_key, labels_key=labels_key)
    paths = {"cube": cube or files["cube"], "labels": labels or files["labels"], "classes": classes or files["classes"]}
    if missing := [f"{part} {path}" for part, path in paths.items() if not Path(str(path)).is_file()]:
        raise DataError(f"the run was trained on your own files and these are no longer there: {'; '.join(missing)}"
                        " (give their new place with --cube, --labels and --classes)")
    scene = load_scene(run.scene, cube=paths["cube"], labels=paths["labels"], classes=paths["classes"],
                       cube_key=cube_key or files["cube_key"], labels_key=labels_key or files["labels_key"])
    same_files(scene, files)
    return scene


__all__ = ["Run", "Scene", "create_model", "list_models", "load_run", "load_scene", "scene_of", "train"]
