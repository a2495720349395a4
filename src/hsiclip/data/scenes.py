"""The benchmark scenes declared as data (files, variables, URLs, checksums, classes) and their loader.

`load_scene` looks in the folders it is given, then in an offline copy shipped by an installed
package, then in a download cache, and downloads only when asked; it verifies what it finds and
turns every problem into one clear `DataError` or `SceneNotFoundError` (torchgeo's verify ->
download -> DatasetNotFoundError pattern).
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError, HsiclipError, SceneNotFoundError
from ..registry import Registry
from .download import download_file
from .io import array_sha256, git_blob_id, read_array

_GIC = "http://www.ehu.eus/ccwintco/uploads"  # Grupo de Inteligencia Computacional (UPV/EHU) scene pages
_GIC_ES = "http://www.ehu.es/ccwintco/uploads"  # same site, the domain DeepHyperX uses for KSC/Botswana


@dataclass(frozen=True)
class SceneFile:
    """One public file of a scene and how to check it."""

    filename: str  # e.g. "Indian_pines_corrected.mat"
    key: str  # variable inside the .mat
    urls: tuple[str, ...]  # public download addresses, tried in order
    array_sha256: str | None = None  # sha256 of the decoded array (C order, little-endian); any container
    git_blob: str | None = None  # git blob id of the public file (`git hash-object FILE`)


@dataclass(frozen=True)
class SceneInfo:
    """What a scene is: where its files come from, its size and its classes."""

    name: str  # registry key, e.g. "indian_pines"
    title: str  # human-readable, e.g. "Indian Pines"
    sensor: str
    shape: tuple[int, int, int]  # (H, W, bands) of the cube
    cube: SceneFile
    gt: SceneFile
    class_names: tuple[str, ...]  # index 0 is label 1; label 0 means unlabelled


SCENES: Registry[SceneInfo] = Registry("scene")


def _declare(info: SceneInfo) -> None:
    SCENES.register(info.name, info)


_declare(SceneInfo(
    name="indian_pines", title="Indian Pines", sensor="AVIRIS", shape=(145, 145, 200),
    cube=SceneFile("Indian_pines_corrected.mat", "indian_pines_corrected",
                   (f"{_GIC}/6/67/Indian_pines_corrected.mat",),
                   array_sha256="36468dd7336c8bd37a80cced54362ea426f226703f3797ba494556fd8134e77f",
                   git_blob="75b6d6e7df046fce91eda23e7559e274c92da711"),
    gt=SceneFile("Indian_pines_gt.mat", "indian_pines_gt", (f"{_GIC}/c/c4/Indian_pines_gt.mat",),
                 array_sha256="ebf20cfe0bce98f01885f0ab4fd1857925db3ef0a1f1624bbee3ffcb92425103",
                 git_blob="8e308e6d2ad7cbb81dc1cd7849a2b7b768f4be6d"),
    class_names=("Alfalfa", "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture", "Grass-trees",
                 "Grass-pasture-mowed", "Hay-windrowed", "Oats", "Soybean-notill", "Soybean-mintill",
                 "Soybean-clean", "Wheat", "Woods", "Buildings-Grass-Trees-Drives", "Stone-Steel-Towers"),
))
_declare(SceneInfo(
    name="pavia_university", title="Pavia University", sensor="ROSIS-03", shape=(610, 340, 103),
    cube=SceneFile("PaviaU.mat", "paviaU", (f"{_GIC}/e/ee/PaviaU.mat",),
                   git_blob="6eecc933bedec1130bb046483dd12e25cf091b24"),
    gt=SceneFile("PaviaU_gt.mat", "paviaU_gt", (f"{_GIC}/5/50/PaviaU_gt.mat",),
                 array_sha256="080b04b1ea189fe9e851d464f922c0aeee632f298a53742aebf13b87a97046fe",
                 git_blob="85d57a7f2fec6fc2b05a810b31808b88f9357dc6"),
    class_names=("Asphalt", "Meadows", "Gravel", "Trees", "Painted metal sheets", "Bare Soil", "Bitumen",
                 "Self-Blocking Bricks", "Shadows"),
))
_declare(SceneInfo(
    name="salinas", title="Salinas", sensor="AVIRIS", shape=(512, 217, 204),
    cube=SceneFile("Salinas_corrected.mat", "salinas_corrected", (f"{_GIC}/a/a3/Salinas_corrected.mat",),
                   git_blob="2a745377a77369bd5a9d430c722f0bf5e0d0ffc1"),
    gt=SceneFile("Salinas_gt.mat", "salinas_gt", (f"{_GIC}/f/fa/Salinas_gt.mat",),
                 array_sha256="19b1164df1350a2781da8f626e7ecacd912b620627b2d970fb8343c30060c3cb",
                 git_blob="a0781d95c9fa20bb3c31751a0cf24b7dc09be65b"),
    class_names=("Brocoli_green_weeds_1", "Brocoli_green_weeds_2", "Fallow", "Fallow_rough_plow",
                 "Fallow_smooth", "Stubble", "Celery", "Grapes_untrained", "Soil_vinyard_develop",
                 "Corn_senesced_green_weeds", "Lettuce_romaine_4wk", "Lettuce_romaine_5wk",
                 "Lettuce_romaine_6wk", "Lettuce_romaine_7wk", "Vinyard_untrained",
                 "Vinyard_vertical_trellis"),
))
# No checksum of the three scenes below is published or was computed here: they load with a warning.
_declare(SceneInfo(
    name="pavia_centre", title="Pavia Centre", sensor="ROSIS-03", shape=(1096, 715, 102),
    cube=SceneFile("Pavia.mat", "pavia", (f"{_GIC}/e/e3/Pavia.mat",)),
    gt=SceneFile("Pavia_gt.mat", "pavia_gt", (f"{_GIC}/5/53/Pavia_gt.mat",)),
    class_names=("Water", "Trees", "Asphalt", "Self-Blocking Bricks", "Bitumen", "Tiles", "Shadows",
                 "Meadows", "Bare Soil"),
))
_declare(SceneInfo(
    name="ksc", title="Kennedy Space Center", sensor="AVIRIS", shape=(512, 614, 176),
    cube=SceneFile("KSC.mat", "KSC", (f"{_GIC_ES}/2/26/KSC.mat",)),
    gt=SceneFile("KSC_gt.mat", "KSC_gt", (f"{_GIC_ES}/a/a6/KSC_gt.mat",)),
    class_names=("Scrub", "Willow swamp", "Cabbage palm hammock", "Cabbage palm/oak hammock", "Slash pine",
                 "Oak/broadleaf hammock", "Hardwood swamp", "Graminoid marsh", "Spartina marsh",
                 "Cattail marsh", "Salt marsh", "Mud flats", "Water"),
))
_declare(SceneInfo(
    name="botswana", title="Botswana", sensor="EO-1 Hyperion", shape=(1476, 256, 145),
    cube=SceneFile("Botswana.mat", "Botswana", (f"{_GIC_ES}/7/72/Botswana.mat",)),
    gt=SceneFile("Botswana_gt.mat", "Botswana_gt", (f"{_GIC_ES}/5/58/Botswana_gt.mat",)),
    class_names=("Water", "Hippo grass", "Floodplain grasses 1", "Floodplain grasses 2", "Reeds", "Riparian",
                 "Firescar", "Island interior", "Acacia woodlands", "Acacia shrublands", "Acacia grasslands",
                 "Short mopane", "Mixed mopane", "Exposed soils"),
))


def get_scene(name: str) -> SceneInfo:
    """The declaration of scene `name`; unknown names raise `ConfigError` listing the valid ones."""
    return SCENES.get(name)


@dataclass(frozen=True)
class PackagedCopy:
    """A scene's arrays shipped inside an installed package: an offline source, used only if they verify."""

    package: str  # top-level package, located with importlib without importing it
    folder: str  # folder inside the package
    cube_file: str  # .npy holding the cube as in the public file
    gt_file: str  # .npy holding the label map
    label: str  # how messages name this source


PACKAGED_COPIES: dict[str, PackagedCopy] = {
    # TensorLy 0.10.0's wheel ships the Indian Pines arrays (identical values to the GIC .mat files).
    "indian_pines": PackagedCopy("tensorly", "datasets/data", "Indian_pines_corrected.npy",
                                 "Indian_pines_gt.npy", "TensorLy"),
}


@dataclass(eq=False)
class Scene:
    """A loaded scene: the cube, its label map and the class names (label k is class_names[k - 1])."""

    name: str
    cube: np.ndarray  # (H, W, B) float32
    labels: np.ndarray  # (H, W) int64; 0 = unlabelled, 1..C
    class_names: tuple[str, ...]
    source: str  # where the arrays came from, for logs and run records
    prompts: str | Path | None = None  # the class file whose texts are its prompts (None: the registered set)
    files: dict[str, str | None] | None = None  # a user's scene: its files, keys and array checksums (`user_scene`)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def targets(self) -> np.ndarray:
        """(H * W,) int64 class index 0..C-1 at labelled pixels, -1 elsewhere (indexed by flat pixel)."""
        return self.labels.reshape(-1).astype(np.int64) - 1


def load_arrays(cube_path: Path | str, gt_path: Path | str, cube_key: str, gt_key: str,
                class_names: Sequence[str], name: str = "custom") -> Scene:
    """Load and validate any scene from a cube file and a label-map file (.mat variables or .npy)."""
    if not class_names:
        raise ConfigError(f"scene {name!r}: class_names is empty")
    cube = read_array(cube_path, cube_key)
    gt = read_array(gt_path, gt_key)
    source = f"{cube_path} [{cube_key}] + {gt_path} [{gt_key}]"
    return _build(name, cube, gt, tuple(class_names), source, Path(cube_path), Path(gt_path))


def user_scene(cube_path: Path | str, labels_path: Path | str, class_names: Sequence[str], *, name: str | None = None,
               cube_key: str | None = None, labels_key: str | None = None) -> Scene:
    """A scene from a user's files: a cube (.mat, .npy, ENVI, GeoTIFF), a label raster and the class names (from
    the class file). The label raster must cover the cube pixel for pixel (size, projection, grid) and use only
    labels that the class file names."""
    from .rasters import CubeSource, check_aligned, read_labels

    cube = CubeSource(cube_path, cube_key)
    gt, georef = read_labels(labels_path, labels_key)
    check_aligned(cube, gt, georef, labels_path)
    if gt.dtype.kind in "biu" and gt.size:
        present = set(np.unique(gt).tolist()) - {0}
        if unnamed := sorted(v for v in present if not 1 <= v <= len(class_names)):
            raise DataError(f"{labels_path}: label(s) {', '.join(map(str, unnamed))} appear in the raster but the "
                            f"class file names only labels 1..{len(class_names)}")
    source = f"{cube_path} + {labels_path}"
    scene = _build(name or Path(cube_path).stem, cube.read(), gt, tuple(class_names), source, Path(cube_path),
                   Path(labels_path))
    # what a run records to find and check these files again (`same_files`): the checksums are of the arrays as
    # loaded, so a moved or re-saved copy with the same values passes
    scene.files = {"cube": str(Path(cube_path).resolve()), "cube_key": cube_key,
                   "labels": str(Path(labels_path).resolve()), "labels_key": labels_key,
                   "cube_sha256": array_sha256(scene.cube), "labels_sha256": array_sha256(scene.labels)}
    return scene


def same_files(scene: Scene, recorded: dict[str, str | None]) -> None:
    """Raise unless `scene`'s arrays are the ones a run was trained on (`recorded`: that scene's `files`)."""
    assert scene.files is not None
    for part in ("cube", "labels"):
        if scene.files[f"{part}_sha256"] != recorded.get(f"{part}_sha256"):
            raise DataError(f"{scene.files[part]} is not the {part} this run was trained on ({recorded[part]}): "
                            "its values differ")


def _build(name: str, cube: np.ndarray, gt: np.ndarray, class_names: tuple[str, ...], source: str,
           cube_path: Path, gt_path: Path) -> Scene:
    """Check the arrays' consistency and convert them: cube to float32, labels to int64."""
    if cube.ndim != 3 or 0 in cube.shape:
        raise DataError(f"{cube_path}: the cube must be a non-empty 3-D array (H, W, bands), "
                        f"got shape {cube.shape}")
    if cube.dtype.kind not in "biuf":
        raise DataError(f"{cube_path}: the cube holds {cube.dtype} values, expected real numbers")
    if gt.ndim != 2:
        raise DataError(f"{gt_path}: the label map must be a 2-D array (H, W), got shape {gt.shape}")
    if gt.shape != cube.shape[:2]:
        raise DataError(f"{gt_path}: the label map is {gt.shape[0]}x{gt.shape[1]} but the cube "
                        f"{cube_path} is {cube.shape[0]}x{cube.shape[1]} pixels")
    cube32 = cube.astype(np.float32, copy=False)
    if cube.dtype.kind == "f":
        n_nan = int(np.isnan(cube32).sum())
        n_inf = int(np.isinf(cube32).sum())
        if n_nan or n_inf:
            raise DataError(f"{cube_path}: the cube holds {n_nan} NaN and {n_inf} infinite values "
                            f"(of {cube.size}); fill or mask them first")
    if gt.dtype.kind == "f":
        bad = ~np.isfinite(gt) | (gt != np.round(gt))
        if bad.any():
            raise DataError(f"{gt_path}: labels must be whole numbers, but {int(bad.sum())} are not "
                            f"(e.g. {gt[bad][0]})")
    elif gt.dtype.kind not in "biu":
        raise DataError(f"{gt_path}: the label map holds {gt.dtype} values, expected integers")
    labels = gt.astype(np.int64)
    n_classes = len(class_names)
    if (low := int(labels.min())) < 0:
        raise DataError(f"{gt_path}: labels must be 0 (unlabelled) or 1..{n_classes}, found {low}")
    if (high := int(labels.max())) > n_classes:
        raise DataError(f"{gt_path}: the largest label is {high} but there are only {n_classes} classes")
    return Scene(name, cube32, labels, class_names, source)


def load_scene(name: str, search_dirs: Sequence[Path | str] = (), *, download_dir: Path | None = None,
               download: bool = False, verify: bool = True, progress: bool = True) -> Scene:
    """Load registered scene `name` from the first place that holds both of its files.

    Order: each of `search_dirs`; a verified offline copy in an installed package (Indian Pines:
    TensorLy); `download_dir`; and, with `download=True`, a fresh download into `download_dir`.
    `verify` checks the array sha256 where known, else the file's git blob id; shapes are always checked.
    """
    info = get_scene(name)
    if download and download_dir is None:
        raise ConfigError("download=True needs a download_dir to save the files in")
    searched: list[str] = []
    for folder in map(Path, search_dirs):
        if not (missing := _missing(folder, info)):
            return _load_files(info, folder, verify=verify)
        searched.append(_describe(folder, missing))
    if (copy := PACKAGED_COPIES.get(name)) is not None:
        scene, note = _try_packaged(info, copy)
        if scene is not None:
            return scene
        searched.append(note)
    if download_dir is not None:
        folder = Path(download_dir)
        if not (missing := _missing(folder, info)):
            return _load_files(info, folder, verify=verify)
        searched.append(_describe(folder, missing))
        if download:
            for file in (info.cube, info.gt):
                if file.filename in missing:
                    _download(file, folder / file.filename, verify=verify, progress=progress)
            return _load_files(info, folder, verify=verify)
    raise SceneNotFoundError(_not_found_message(info, searched, download_dir))


def where_found(name: str, folders: Sequence[Path]) -> str:
    """The first of `folders` that holds both of a scene's files, its packaged copy, or "-"."""
    info = get_scene(name)
    found = next((str(f) for f in folders if not _missing(Path(f), info)), None)
    if found is None and name in PACKAGED_COPIES:
        found = f"{PACKAGED_COPIES[name].label} package"
    return found or "-"


def _missing(folder: Path, info: SceneInfo) -> list[str]:
    return [f.filename for f in (info.cube, info.gt) if not (folder / f.filename).is_file()]


def _describe(folder: Path, missing: list[str]) -> str:
    return f"{folder} (does not exist)" if not folder.is_dir() else f"{folder} (no {', '.join(missing)})"


def _load_files(info: SceneInfo, folder: Path, *, verify: bool) -> Scene:
    cube_path, gt_path = folder / info.cube.filename, folder / info.gt.filename
    return _load_checked(info, cube_path, gt_path, verify=verify, source=f"{folder}")


def _load_checked(info: SceneInfo, cube_path: Path, gt_path: Path, *, verify: bool, source: str) -> Scene:
    """Read a registered scene's two files, check shape and checksums, then validate and convert."""
    cube = read_array(cube_path, info.cube.key)
    gt = read_array(gt_path, info.gt.key)
    for path, array, expected in ((cube_path, cube, info.shape), (gt_path, gt, info.shape[:2])):
        if array.shape != expected:
            raise DataError(f"{path}: array has shape {array.shape}, but {info.title} is {expected}")
    if verify:
        _verify(info.cube, cube_path, cube)
        _verify(info.gt, gt_path, gt)
    return _build(info.name, cube, gt, info.class_names, source, cube_path, gt_path)


def _verify(file: SceneFile, path: Path, array: np.ndarray) -> None:
    """Array sha256 when known (container-independent), else the file's git blob id, else warn."""
    if file.array_sha256 is not None:
        what, expected, got = "array sha256", file.array_sha256, array_sha256(array)
    elif file.git_blob is not None:
        what, expected, got = "git blob id", file.git_blob, git_blob_id(path)
    else:
        warnings.warn(f"{path}: no checksum is known for {file.filename}, so it is loaded unverified; "
                      "compare its shape and label counts with a trusted copy", UserWarning, stacklevel=5)
        return
    if got != expected:
        raise DataError(f"{path}: {what} is {got}, expected {expected}; the file is damaged or a different "
                        "version (replace it, or pass --no-verify to skip this check)")


def _try_packaged(info: SceneInfo, copy: PackagedCopy) -> tuple[Scene | None, str]:
    """Load the packaged copy if present and its arrays verify; else say why it was passed over."""
    folder = _package_folder(copy.package)
    if folder is None:
        return None, f"the {copy.label} offline copy (package {copy.package!r} is not installed)"
    folder = folder / copy.folder
    cube_path, gt_path = folder / copy.cube_file, folder / copy.gt_file
    if not (cube_path.is_file() and gt_path.is_file()):
        return None, f"{folder} ({copy.label} offline copy: no {copy.cube_file} / {copy.gt_file})"
    if info.cube.array_sha256 is None or info.gt.array_sha256 is None:
        return None, f"{folder} ({copy.label} offline copy: skipped, no array checksum to verify it)"
    try:
        scene = _load_checked(info, cube_path, gt_path, verify=True,
                              source=f"{copy.label} offline copy ({folder})")
    except DataError as e:
        return None, f"{folder} ({copy.label} offline copy skipped: {e})"
    return scene, ""


def _package_folder(package: str) -> Path | None:
    """Where an installed package lives, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _download(file: SceneFile, dest: Path, *, verify: bool, progress: bool) -> None:
    """Try each public address of `file` in turn; raise with every failure if none works."""
    if not file.urls:
        raise SceneNotFoundError(f"{file.filename} has no known download address; obtain it by hand")
    failures: list[HsiclipError] = []
    for url in file.urls:
        try:
            download_file(url, dest, git_blob=file.git_blob if verify else None, progress=progress)
            return
        except HsiclipError as e:  # DataError (checksum) included: the next mirror may be right
            failures.append(e)
    kind = DataError if any(isinstance(e, DataError) for e in failures) else HsiclipError
    raise kind(f"could not download {file.filename}: " + "; ".join(map(str, failures)))


def _not_found_message(info: SceneInfo, searched: list[str], download_dir: Path | None) -> str:
    urls = " and ".join(u for f in (info.cube, info.gt) for u in f.urls)
    where = "; ".join(searched) if searched else "no folder (none was given)"
    into = f" into {download_dir}" if download_dir is not None else ""
    return (f"scene {info.name!r} ({info.title}) not found: it needs {info.cube.filename} and "
            f"{info.gt.filename} in one folder. Searched: {where}. To get it, put both files in a folder "
            f"and pass --data-dir DIR or set HSICLIP_DATA_DIR=DIR, or pass --download to fetch them{into} "
            f"from {urls}")
