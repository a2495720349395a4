"""Scene registry, reading, validation, verification and download, on tiny seeded synthetic files.

Four tests use the real Indian Pines scene: from conftest's `data_dir` (skipped when absent) and from TensorLy's
offline copy (skipped when TensorLy is not installed).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from hsiclip.data import download as download_mod
from hsiclip.data.download import download_file, git_blob_id
from hsiclip.data.io import array_sha256, read_array
from hsiclip.data.scenes import (
    PACKAGED_COPIES,
    SCENES,
    PackagedCopy,
    Scene,
    SceneFile,
    SceneInfo,
    get_scene,
    load_arrays,
    load_scene,
)
from hsiclip.errors import ConfigError, DataError, HsiclipError, SceneNotFoundError

TINY_SHAPE = (6, 5, 4)  # (H, W, B) of the synthetic scene
TINY_CLASSES = ("a", "b", "c")


def _cube(shape: tuple[int, ...] = TINY_SHAPE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1000, shape).astype(np.uint16)


def _gt(shape: tuple[int, ...] = TINY_SHAPE[:2], n_classes: int = 3, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n_classes + 1, shape).astype(np.uint8)


def _mat(path: Path, **arrays: np.ndarray) -> Path:
    scipy.io.savemat(path, arrays)
    return path


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A registered 6x5x4 scene "tiny" whose files sit in `server/` and are reachable by file:// URLs."""
    server = tmp_path / "server"
    server.mkdir()
    cube, gt = _cube(), _gt()
    cube_path = _mat(server / "tiny.mat", cube=cube)
    gt_path = _mat(server / "tiny_gt.mat", gt=gt)
    dead = (tmp_path / "nowhere" / "tiny.mat").as_uri()  # a first mirror that fails
    info = SceneInfo(
        name="tiny", title="Tiny", sensor="none", shape=TINY_SHAPE,
        cube=SceneFile("tiny.mat", "cube", (dead, cube_path.as_uri()), array_sha256=array_sha256(cube)),
        gt=SceneFile("tiny_gt.mat", "gt", (gt_path.as_uri(),), git_blob=git_blob_id(gt_path)),
        class_names=TINY_CLASSES,
    )
    _declare_tiny(monkeypatch, info)
    return {"info": info, "server": server, "cube": cube, "gt": gt}


def _declare_tiny(monkeypatch: pytest.MonkeyPatch, info: SceneInfo, **changes: object) -> None:
    """Register the tiny scene (replacing an earlier one) until the test ends."""
    if "tiny" in SCENES:
        SCENES.unregister("tiny")
    SCENES.register("tiny", dataclasses.replace(info, **changes))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _forget_tiny() -> Iterator[None]:
    """A scene registered by a test is gone after it."""
    yield
    if "tiny" in SCENES:
        SCENES.unregister("tiny")


# --- registry ---------------------------------------------------------------------------------------


def test_six_scenes_with_their_class_counts() -> None:
    counts = {name: len(get_scene(name).class_names) for name in SCENES}
    assert counts == {"indian_pines": 16, "pavia_university": 9, "salinas": 16, "pavia_centre": 9,
                      "ksc": 13, "botswana": 14}
    for name in SCENES:
        info = get_scene(name)
        assert info.name == name and len(info.shape) == 3
        assert info.cube.urls and info.gt.urls and info.cube.filename.endswith(".mat")


def test_unknown_scene_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="unknown scene 'indian_pine'") as err:
        get_scene("indian_pine")
    assert "indian_pines" in str(err.value) and "botswana" in str(err.value)
    with pytest.raises(ConfigError):
        load_scene("nope")


# --- load_arrays: validation --------------------------------------------------------------------------


def test_load_arrays_converts_types(tmp_path: Path) -> None:
    cube_path = _mat(tmp_path / "c.mat", cube=_cube())
    np.save(tmp_path / "g.npy", _gt())
    scene = load_arrays(cube_path, tmp_path / "g.npy", "cube", "ignored", TINY_CLASSES, name="mine")
    assert scene.cube.shape == TINY_SHAPE and scene.cube.dtype == np.float32
    assert scene.labels.shape == TINY_SHAPE[:2] and scene.labels.dtype == np.int64
    np.testing.assert_array_equal(scene.cube, _cube().astype(np.float32))
    np.testing.assert_array_equal(scene.labels, _gt())
    assert scene.num_classes == 3 and scene.name == "mine" and "c.mat" in scene.source


def _truncated(path: Path) -> None:
    scipy.io.savemat(path, {"cube": _cube()}, do_compression=True)
    path.write_bytes(path.read_bytes()[:150])


def _matlab_v73(path: Path) -> None:
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116) + b" " * 8
    path.write_bytes(header + b"\x00\x02IM" + b"\x00" * 400)


def _corrupt(path: Path) -> None:
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 500).astype(np.uint8).tobytes())


def _float_cube(bad: float, n: int) -> np.ndarray:
    cube = _cube().astype(np.float64)
    cube.reshape(-1)[:n] = bad
    return cube


BAD_CUBE_FILES = {  # writes cube.mat -> what the message must say
    "corrupt bytes": (_corrupt, "corrupt"),
    "truncated": (_truncated, "truncated"),
    "matlab v7.3": (_matlab_v73, "v7.3"),
    "wrong variable": (lambda p: _mat(p, data=_cube(), extra=np.zeros(3)), "holds data (6, 5, 4), extra"),
    "2-D cube": (lambda p: _mat(p, cube=_cube()[..., 0]), "3-D"),
    "NaN": (lambda p: _mat(p, cube=_float_cube(np.nan, 3)), "3 NaN and 0 infinite"),
    "Inf": (lambda p: _mat(p, cube=_float_cube(np.inf, 2)), "0 NaN and 2 infinite"),
    "size mismatch": (lambda p: _mat(p, cube=_cube((6, 4, 4))), "is 6x5 but the cube"),
}


@pytest.mark.parametrize("case", BAD_CUBE_FILES)
def test_bad_cube_file_raises_data_error(tmp_path: Path, case: str) -> None:
    write, expected = BAD_CUBE_FILES[case]
    cube_path = tmp_path / "cube.mat"
    write(cube_path)
    gt_path = _mat(tmp_path / "gt.mat", gt=_gt())
    with pytest.raises(DataError, match="mat") as err:
        load_arrays(cube_path, gt_path, "cube", "gt", TINY_CLASSES)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


BAD_LABELS = {  # label map -> what the message must say
    "beyond the class list": (_gt(n_classes=5), "largest label is 5 but there are only 3 classes"),
    "negative": (_gt().astype(np.int16) - 1, "found -1"),
    "not whole numbers": (_gt().astype(np.float64) + 0.5, "whole numbers, but 30 are not"),
    "3-D": (_gt((6, 5, 1)), "2-D"),
}


@pytest.mark.parametrize("case", BAD_LABELS)
def test_bad_labels_raise_data_error(tmp_path: Path, case: str) -> None:
    gt, expected = BAD_LABELS[case]
    cube_path, gt_path = _mat(tmp_path / "cube.mat", cube=_cube()), _mat(tmp_path / "gt.mat", gt=gt)
    with pytest.raises(DataError, match=r"gt\.mat") as err:
        load_arrays(cube_path, gt_path, "cube", "gt", TINY_CLASSES)
    assert expected in str(err.value)


def test_whole_float_labels_and_missing_files(tmp_path: Path) -> None:
    cube_path = _mat(tmp_path / "cube.mat", cube=_cube())
    gt_path = _mat(tmp_path / "gt.mat", gt=_gt().astype(np.float64))
    assert load_arrays(cube_path, gt_path, "cube", "gt", TINY_CLASSES).labels.dtype == np.int64
    with pytest.raises(DataError, match="no such file"):
        load_arrays(tmp_path / "absent.mat", gt_path, "cube", "gt", TINY_CLASSES)
    text = tmp_path / "cube.txt"
    text.write_text("1 2 3")
    with pytest.raises(DataError, match=r"unsupported file type '\.txt'"):
        load_arrays(text, gt_path, "cube", "gt", TINY_CLASSES)


# --- load_scene: lookup, verification, messages ---------------------------------------------------------


def test_not_found_names_every_place_and_how_to_get_it(tmp_path: Path) -> None:
    empty, absent, cache = tmp_path / "empty", tmp_path / "absent", tmp_path / "cache"
    empty.mkdir()
    (empty / "PaviaU_gt.mat").write_bytes(b"only the gt")  # one file of two does not count
    with pytest.raises(SceneNotFoundError) as err:
        load_scene("pavia_university", [empty, absent], download_dir=cache)
    msg = str(err.value)
    for needed in (str(empty), str(absent), str(cache), "--download", "HSICLIP_DATA_DIR", "--data-dir",
                   "no PaviaU.mat", "http://www.ehu.eus/ccwintco/uploads/e/ee/PaviaU.mat"):
        assert needed in msg


def test_search_dirs_in_order_need_both_files(tiny: dict, tmp_path: Path) -> None:
    half, full = tmp_path / "half", tiny["server"]
    half.mkdir()
    (half / "tiny_gt.mat").write_bytes((full / "tiny_gt.mat").read_bytes())
    scene = load_scene("tiny", [half, full], progress=False)
    assert scene.source == str(full)
    np.testing.assert_array_equal(scene.labels, tiny["gt"])


def test_download_then_cache(tiny: dict, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    scene = load_scene("tiny", download_dir=cache, download=True, progress=False)  # 1st cube URL is dead
    assert sorted(p.name for p in cache.iterdir()) == ["tiny.mat", "tiny_gt.mat"]
    np.testing.assert_array_equal(scene.cube, tiny["cube"].astype(np.float32))
    for p in tiny["server"].iterdir():
        p.unlink()
    assert load_scene("tiny", download_dir=cache).source == str(cache)  # the cache counts as found
    with pytest.raises(ConfigError, match="download_dir"):
        load_scene("tiny", download=True)


def test_download_failure_on_every_url(tiny: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tiny["info"]
    _declare_tiny(monkeypatch, info, gt=SceneFile("tiny_gt.mat", "gt", info.gt.urls, git_blob="0" * 40))
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"could not download tiny_gt\.mat"):
        load_scene("tiny", download_dir=cache, download=True, progress=False)
    assert sorted(p.name for p in cache.iterdir()) == ["tiny.mat"]


def test_checksum_mismatch_and_shape_check(tiny: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tiny["info"]
    _declare_tiny(monkeypatch, info, cube=SceneFile("tiny.mat", "cube", (), array_sha256="f" * 64))
    with pytest.raises(DataError, match=r"tiny\.mat: array sha256 is .* expected f{64}.*--no-verify"):
        load_scene("tiny", [tiny["server"]])
    assert load_scene("tiny", [tiny["server"]], verify=False).cube.shape == TINY_SHAPE
    _declare_tiny(monkeypatch, info, shape=(6, 5, 3))
    with pytest.raises(DataError, match=r"shape \(6, 5, 4\), but Tiny is \(6, 5, 3\)"):
        load_scene("tiny", [tiny["server"]], verify=False)


def test_unverified_scene_warns_unless_verify_is_off(tiny: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tiny["info"]
    _declare_tiny(monkeypatch, info, cube=SceneFile("tiny.mat", "cube", ()),
                  gt=SceneFile("tiny_gt.mat", "gt", ()))
    with pytest.warns(UserWarning, match="unverified") as record:
        load_scene("tiny", [tiny["server"]])
    assert len(record) == 2 and record[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_scene("tiny", [tiny["server"]], verify=False)


def test_packaged_copy_must_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "site" / "fake_offline_arrays"  # a package holding a copy, as TensorLy does
    (package / "datasets" / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    np.save(package / "datasets" / "data" / "cube.npy", _cube((145, 145, 200)))  # right shape, wrong values
    np.save(package / "datasets" / "data" / "gt.npy", _gt((145, 145), n_classes=16))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    copy = PackagedCopy("fake_offline_arrays", "datasets/data", "cube.npy", "gt.npy", "Fake")
    monkeypatch.setitem(PACKAGED_COPIES, "indian_pines", copy)
    with pytest.raises(SceneNotFoundError, match=r"Fake offline copy skipped: .*array sha256"):
        load_scene("indian_pines")
    monkeypatch.setitem(PACKAGED_COPIES, "indian_pines", dataclasses.replace(copy, package="no_such_package_here"))
    with pytest.raises(SceneNotFoundError, match="'no_such_package_here' is not installed"):
        load_scene("indian_pines")


# --- full-size synthetic Pavia University / Salinas ----------------------------------------------------


@pytest.fixture(scope="module")
def pavia_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("paviaU")
    _mat(folder / "PaviaU.mat", paviaU=_cube((610, 340, 103)))
    _mat(folder / "PaviaU_gt.mat", paviaU_gt=_gt((610, 340), n_classes=9))
    return folder


def test_synthetic_pavia_university_loads(pavia_dir: Path) -> None:
    scene = load_scene("pavia_university", [pavia_dir], verify=False)
    assert scene.cube.shape == (610, 340, 103) and scene.cube.dtype == np.float32
    assert scene.labels.shape == (610, 340) and scene.labels.dtype == np.int64
    assert scene.num_classes == 9 and scene.labels.max() == 9


def test_synthetic_pavia_university_fails_git_blob(pavia_dir: Path) -> None:
    with pytest.raises(DataError, match=r"PaviaU\.mat: git blob id is [0-9a-f]{40}, expected 6eecc933") as err:
        load_scene("pavia_university", [pavia_dir])
    assert "--no-verify" in str(err.value)


def test_synthetic_salinas_loads(tmp_path: Path) -> None:
    _mat(tmp_path / "Salinas_corrected.mat", salinas_corrected=_cube((512, 217, 204)))
    _mat(tmp_path / "Salinas_gt.mat", salinas_gt=_gt((512, 217), n_classes=16))
    scene = load_scene("salinas", [tmp_path], verify=False)
    assert scene.cube.shape == (512, 217, 204) and scene.labels.shape == (512, 217)
    assert scene.num_classes == 16 and scene.cube.dtype == np.float32 and scene.labels.dtype == np.int64


# --- download_file ----------------------------------------------------------------------------------------


def test_download_file_verifies(tmp_path: Path) -> None:
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello\n")
    blob = "ce013625030ba8dba906f756967f9e9ca394464a"  # `echo hello | git hash-object --stdin`
    assert git_blob_id(src) == blob and download_mod.git_blob_id is git_blob_id
    dest = download_file(src.as_uri(), tmp_path / "out" / "hello.txt", git_blob=blob, progress=False)
    assert dest.read_bytes() == b"hello\n"


@pytest.mark.parametrize("check", [{"git_blob": "0" * 40}, {"sha256": "0" * 64}])
def test_download_file_mismatch_leaves_nothing(tmp_path: Path, check: dict) -> None:
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello\n")
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"hello\.txt downloaded from .* expected 0+; the file was not kept"):
        download_file(src.as_uri(), out / "hello.txt", progress=False, **check)
    assert list(out.iterdir()) == []


def test_download_file_offline(tmp_path: Path) -> None:
    url = (tmp_path / "missing.bin").as_uri()
    with pytest.raises(HsiclipError, match="may be offline") as err:
        download_file(url, tmp_path / "out" / "x.bin", progress=False)
    assert url in str(err.value) and not isinstance(err.value, DataError)
    assert list((tmp_path / "out").iterdir()) == []


# --- the real Indian Pines scene ----------------------------------------------------------------------------


def test_real_indian_pines_from_data_dir(data_dir: Path) -> None:
    scene = load_scene("indian_pines", [data_dir])
    assert scene.cube.shape == (145, 145, 200) and scene.labels.shape == (145, 145)
    assert int((scene.labels > 0).sum()) == 10249 and int((scene.labels == 2).sum()) == 1428
    assert scene.class_names[1] == "Corn-notill" and scene.num_classes == 16


def test_declared_checksums_match_the_real_files(data_dir: Path) -> None:
    folder, checked = data_dir, 0
    for name in SCENES:
        for file in (get_scene(name).cube, get_scene(name).gt):
            if (folder / file.filename).is_file():
                assert git_blob_id(folder / file.filename) == file.git_blob
                if file.array_sha256 is not None:
                    assert array_sha256(read_array(folder / file.filename, file.key)) == file.array_sha256
                checked += 1
    assert checked >= 2  # at least the Indian Pines pair


def _offline() -> Scene:
    if importlib.util.find_spec("tensorly") is None:
        pytest.skip("tensorly is not installed")
    return load_scene("indian_pines")


def test_real_indian_pines_offline_copy() -> None:
    scene = _offline()
    assert scene.source.startswith("TensorLy offline copy")
    assert scene.cube.shape == (145, 145, 200) and int((scene.labels > 0).sum()) == 10249


def test_real_indian_pines_offline_copy_is_identical(data_dir: Path) -> None:
    offline, reference = _offline(), load_scene("indian_pines", [data_dir])
    assert np.array_equal(offline.cube, reference.cube) and np.array_equal(offline.labels, reference.labels)
