"""A user's own scene (ENVI / GeoTIFF / .npy + a class file) end to end, tiled prediction, and bad input."""

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from conftest import TINY_PROMPTS, make_tiny_scene
from rasterio.crs import CRS

from hsiclip import load_run
from hsiclip.cli import main
from hsiclip.data.rasters import CubeSource, Georef, write_envi

GEO = Georef(CRS.from_epsg(32616), Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4500000.0))


def _write_labels(path, labels, georef=GEO):
    kw = {"crs": georef.crs, "transform": georef.transform} if georef.present else {}
    with rasterio.open(path, "w", driver="GTiff", height=labels.shape[0], width=labels.shape[1], count=1,
                       dtype="uint8", **kw) as dst:
        dst.write(labels.astype(np.uint8), 1)
    return path


@pytest.fixture
def own_scene(tmp_path):
    """The tiny scene re-packaged the way a user would have it: ENVI cube, GeoTIFF labels, TOML classes."""
    scene = make_tiny_scene(h=30, w=26, bands=30)
    cube = write_envi(tmp_path / "scene", (scene.cube * 1000).astype(np.int16), GEO)
    labels = _write_labels(tmp_path / "labels.tif", scene.labels)
    classes = tmp_path / "classes.toml"
    classes.write_text(TINY_PROMPTS)
    return cube.with_suffix(".hdr"), labels, classes, scene


def test_train_and_predict_on_a_users_envi_scene(tmp_path, own_scene, tiny_recipe, text_cache, monkeypatch,
                                                 capsys):
    monkeypatch.setenv("HSICLIP_CACHE_DIR", str(text_cache))
    cube, labels, classes, scene = own_scene
    run = tmp_path / "run"
    assert main(["train", "--cube", str(cube), "--labels", str(labels), "--classes", str(classes), "--epochs", "4",
                 "--config", str(tiny_recipe), "--out", str(run), "--quiet"]) == 0
    trained = load_run(run)
    assert trained.class_names == ("Corn", "Asphalt", "Water") and trained.scene == "scene"
    assert trained.recipe.train.epochs == 4 and trained.window == 9  # the recipe file, with --epochs on top
    assert (run / "map.png").stat().st_size > 5_000

    pred = tmp_path / "pred"
    assert main(["predict", str(run), str(cube), "--out", str(pred), "--tile", "7", "--batch-size", "50",
                 "--quiet"]) == 0
    assert "px/s" in capsys.readouterr().out
    # tile by tile (7 x 7 tiles, halos from the neighbours) = one pass over the whole scene
    whole, conf = trained.predict(CubeSource(cube).read())
    classes_map = np.load(pred / "classes.npy")
    np.testing.assert_array_equal(classes_map, whole)
    np.testing.assert_allclose(np.load(pred / "confidence.npy"), conf, rtol=1e-5)
    summary = json.loads((pred / "summary.json").read_text())
    assert summary["stem_per_tile"] and not summary["compiled"]  # a small scene: not worth compiling
    with rasterio.open(pred / "classes.tif") as ds:  # the GeoTIFF keeps the cube's georeferencing
        assert ds.crs == GEO.crs and ds.transform == GEO.transform
        np.testing.assert_array_equal(ds.read(1), whole)
        # its colour table and the QGIS style give each class the colour of every figure, and name it
        from hsiclip.predict import class_colors

        rgba = (class_colors(3) * 255).round().astype(int)
        assert [ds.colormap(1)[i] for i in range(4)] == [tuple(v) for v in rgba]
        assert ds.tags(1)["CLASS_2"] == "Asphalt"
    import xml.etree.ElementTree as ET

    entries = ET.parse(pred / "classes.qml").getroot().findall(".//paletteEntry")
    assert [(e.get("value"), e.get("label")) for e in entries] == [("1", "1 Corn"), ("2", "2 Asphalt"),
                                                                    ("3", "3 Water")]
    assert entries[1].get("color") == "#{:02x}{:02x}{:02x}".format(*rgba[2][:3])
    from PIL import Image

    figure = Image.open(pred / "classes_map.png")  # the readable map: legend and title make it wider than tall
    assert figure.size[0] > figure.size[1] > 300
    with rasterio.open(pred / "confidence.tif") as ds:
        assert ds.dtypes[0] == "float32" and ds.crs == GEO.crs
    from PIL import Image

    png = Image.open(pred / "classes.png")
    assert png.size == (26, 30) and png.mode == "P"
    labelled = scene.labels > 0
    assert (whole[labelled] == scene.labels[labelled]).mean() > 0.8  # it learnt the stripes
    # bad requests: one error line, exit 1, nothing written
    (tmp_path / "a_file").write_text("x")
    for args, says in ((["--batch-size", "0"], "--batch-size must be positive"),
                       (["--batch-size", "-3"], "--batch-size must be positive"),
                       (["--out", str(tmp_path / "a_file")], "is a file, not a folder")):
        out = ["--out", str(tmp_path / "bad")] if "--out" not in args else []
        assert main(["predict", str(run), str(cube), *out, *args, "--quiet"]) == 1
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "bad").exists()
    assert (tmp_path / "a_file").read_text() == "x"


@pytest.mark.slow  # TorchInductor compiles for several seconds
def test_compiled_prediction_gives_the_same_map(tmp_path, own_scene, tiny_recipe, text_cache):
    from hsiclip import load_scene, train

    cube, labels, classes, _ = own_scene
    trained = train(load_scene(cube=cube, labels=labels, classes=classes), str(tiny_recipe), epochs=1,
                    cache_dir=text_cache, progress=False)
    trained.save(tmp_path / "run")
    whole, conf = trained.predict(CubeSource(cube).read())
    # compiled (heads-last attention, TorchInductor): the same map
    assert main(["predict", str(tmp_path / "run"), str(cube), "--out", str(tmp_path / "fast"), "--tile", "11",
                 "--batch-size", "64", "--compile", "yes", "--quiet"]) == 0
    assert json.loads((tmp_path / "fast" / "summary.json").read_text())["compiled"]
    np.testing.assert_array_equal(np.load(tmp_path / "fast" / "classes.npy"), whole)
    np.testing.assert_allclose(np.load(tmp_path / "fast" / "confidence.npy"), conf, rtol=1e-4)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # a plain GeoTIFF, on purpose
def test_any_cube_format_reads_the_same(tmp_path, own_scene):
    cube, _, _, _ = own_scene
    ref = CubeSource(cube).read()
    np.save(tmp_path / "c.npy", ref)
    with rasterio.open(tmp_path / "c.tif", "w", driver="GTiff", height=30, width=26, count=30, dtype="float32") as d:
        d.write(ref.transpose(2, 0, 1))
    for path in (tmp_path / "c.npy", tmp_path / "c.tif", cube.with_suffix(".img")):
        src = CubeSource(path)
        assert src.shape == (30, 26, 30)
        np.testing.assert_array_equal(src.read(), ref)
        np.testing.assert_array_equal(src.read(4, 9, 20, 26), ref[4:9, 20:26])


def _fails(args, capsys, message):
    assert main(args) == 1
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") <= 2  # one clear line, no traceback


def test_bad_user_input_fails_with_one_clear_line(tmp_path, own_scene, tiny_recipe, text_cache, monkeypatch,
                                                  capsys):
    monkeypatch.setenv("HSICLIP_CACHE_DIR", str(text_cache))
    cube, labels, classes, scene = own_scene
    run = tmp_path / "run"
    base = ["train", "--cube", str(cube), "--labels", str(labels), "--classes", str(classes), "--epochs", "1",
            "--out", str(run), "--quiet", "--no-map", "--config", str(tiny_recipe)]

    small = _write_labels(tmp_path / "small.tif", scene.labels[:20])
    _fails([*base[:4], str(small), *base[5:]], capsys, "the label raster is 20x26 pixels but the cube")
    other = _write_labels(tmp_path / "utm17.tif", scene.labels, Georef(CRS.from_epsg(32617), GEO.transform))
    _fails([*base[:4], str(other), *base[5:]], capsys, "projection")
    shifted = _write_labels(tmp_path / "shift.tif", scene.labels,
                            Georef(GEO.crs, Affine(30.0, 0.0, 500030.0, 0.0, -30.0, 4500000.0)))
    _fails([*base[:4], str(shifted), *base[5:]], capsys, "pixel grid")
    two = tmp_path / "two.toml"
    two.write_text(TINY_PROMPTS.split("[[classes]]\nlabel = 3")[0])
    _fails([*base[:6], str(two), *base[7:]], capsys, "label(s) 3 appear in the raster but the class file names "
                                                     "only labels 1..2")
    twice = tmp_path / "twice.yaml"
    twice.write_text("classes:\n  - {label: 1, name: Corn}\n  - {label: 2, name: Corn}\n  - {label: 3, name: W}\n")
    _fails([*base[:6], str(twice), *base[7:]], capsys, "class name(s) 'Corn' appear more than once")
    _fails(["train", "--cube", str(cube), "--quiet"], capsys, "needs all three of --cube, --labels and --classes")
    assert not run.exists()  # nothing half-written

    # a run trained on 30 bands cannot classify a 10-band cube
    assert main(base) == 0
    np.save(tmp_path / "ten.npy", np.zeros((8, 8, 10), dtype=np.float32))
    _fails(["predict", str(run), str(tmp_path / "ten.npy"), "--out", str(tmp_path / "p"), "--quiet"], capsys,
           "the cube has 10 bands but the run was trained on 30")
    assert not (tmp_path / "p").exists()
    bad = tmp_path / "nan.npy"
    cube_nan = CubeSource(cube).read()
    cube_nan[29, 25, 3] = np.nan
    np.save(bad, cube_nan)
    _fails(["predict", str(run), str(bad), "--out", str(tmp_path / "q"), "--tile", "8", "--quiet"], capsys,
           "NaN or infinite values in 1 pixel of the part read, first at (row, column) (29, 25)")
    assert not (tmp_path / "q").exists() and not list(tmp_path.glob(".q.*"))  # the partial output was removed
    _fails(["predict", str(run), str(cube), "--out", str(tmp_path / "r"), "--compile", "maybe", "--quiet"], capsys,
           "--compile must be auto, yes or no")
    assert not (tmp_path / "r").exists()


def test_a_run_on_own_files_is_evaluated_mapped_and_applied_and_checks_its_files(tmp_path, own_scene, tiny_recipe,
                                                                              text_cache, monkeypatch, capsys):
    """The own-scene round trip (train, evaluate, map, predict): the run records its files and their checksums, so
    `evaluate` and `map` find them again; moved files are given with --cube/--labels/--classes, and files with other
    values are refused."""
    monkeypatch.setenv("HSICLIP_CACHE_DIR", str(text_cache))
    cube, labels, classes, _ = own_scene
    run = tmp_path / "run"
    assert main(["train", "--cube", str(cube), "--labels", str(labels), "--classes", str(classes), "--epochs", "1",
                 "--config", str(tiny_recipe), "--scene", "my_field", "--out", str(run), "--quiet", "--no-map"]) == 0
    capsys.readouterr()
    assert load_run(run).scene == "my_field"
    assert main(["evaluate", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "identical to" in out
    assert main(["map", str(run), "--out", str(tmp_path / "map.png"), "--quiet"]) == 0
    assert (tmp_path / "map.png").stat().st_size > 5_000
    assert main(["predict", str(run), str(cube), "--out", str(tmp_path / "pred"), "--quiet"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "pred" / "classes.npy"),
                                  load_run(run).predict(CubeSource(cube).read())[0])

    moved = tmp_path / "moved"
    moved.mkdir()
    for f in (cube, cube.with_suffix(".img"), labels, classes):
        f.rename(moved / f.name)
    _fails(["evaluate", str(run), "--quiet"], capsys, "no longer there")
    given = ["--cube", str(moved / cube.name), "--labels", str(moved / labels.name), "--classes",
             str(moved / classes.name)]
    assert main(["evaluate", str(run), *given, "--quiet"]) == 0
    assert "identical to" in capsys.readouterr().out
    # a re-saved copy with the same values in another format passes; other values are refused
    np.save(tmp_path / "cube.npy", CubeSource(moved / cube.name).read())
    assert main(["evaluate", str(run), *given[2:], "--cube", str(tmp_path / "cube.npy"), "--quiet"]) == 0
    other = CubeSource(moved / cube.name).read().copy()
    other[0, 0, 0] += 1
    np.save(tmp_path / "other.npy", other)
    _fails(["evaluate", str(run), *given[2:], "--cube", str(tmp_path / "other.npy"), "--quiet"], capsys,
           "is not the cube this run was trained on")


@pytest.mark.slow
def test_indian_pines_repackaged_as_envi_trains_exactly_like_the_registered_scene(tmp_path, data_dir, text_cache,
                                                                                 monkeypatch):
    """The README's worked example: `hsiclip export` -> ENVI + GeoTIFF + TOML -> train = the built-in scene's run."""
    monkeypatch.setenv("HSICLIP_CACHE_DIR", str(text_cache))
    own = tmp_path / "ip"
    assert main(["export", "indian_pines", "--out", str(own), "--data-dir", str(data_dir), "--quiet"]) == 0
    common = ["--epochs", "2", "--seed", "1", "--quiet", "--no-map"]
    assert main(["train", "--scene", "indian_pines", "--data-dir", str(data_dir), "--out", str(tmp_path / "a"),
                 *common]) == 0
    assert main(["train", "--cube", str(own / "indian_pines.hdr"), "--labels", str(own / "indian_pines_labels.tif"),
                 "--classes", str(own / "indian_pines_classes.toml"), "--out", str(tmp_path / "b"), *common]) == 0
    a, b = (json.loads((tmp_path / x / "metrics.json").read_text()) for x in ("a", "b"))
    assert a["confusion"] == b["confusion"] and a["oa"] == b["oa"]


def test_train_under_the_leak_free_protocol(tmp_path, own_scene, tiny_recipe, text_cache, monkeypatch):
    from scipy import ndimage

    from hsiclip import load_scene
    from hsiclip.data.preprocess import fit_preprocessing
    from hsiclip.data.protocols import LEAKFREE_WINDOW
    from hsiclip.data.splits import Split

    monkeypatch.setenv("HSICLIP_CACHE_DIR", str(text_cache))
    cube, labels, classes, scene = own_scene
    run = tmp_path / "run"
    assert main(["train", "--cube", str(cube), "--labels", str(labels), "--classes", str(classes), "--epochs", "1",
                 "--config", str(tiny_recipe), "--protocol", "leakfree", "--out", str(run), "--quiet",
                 "--no-map"]) == 0
    trained = load_run(run)
    assert trained.record["protocol"] == f"leakfree-w{LEAKFREE_WINDOW}"
    split = Split.load(run / "split.npz")
    train = np.zeros(scene.labels.size, dtype=bool)
    train[split.train] = True
    dist = ndimage.distance_transform_cdt(~train.reshape(scene.labels.shape), metric="chessboard").reshape(-1)
    assert dist[split.test].min() > LEAKFREE_WINDOW // 2  # no test window of the margin holds a training pixel
    # the PCA saw the training pixels only
    data = load_scene(cube=cube, labels=labels, classes=classes)
    k = trained.preprocess.channels
    np.testing.assert_allclose(trained.preprocess.mean, fit_preprocessing(data.cube, k, split.train).mean, rtol=1e-5)
    assert not np.allclose(trained.preprocess.mean, fit_preprocessing(data.cube, k).mean, rtol=1e-3)


def test_a_leak_free_margin_narrower_than_the_window_is_refused(own_scene, text_cache):
    from hsiclip import load_scene, train
    from hsiclip.errors import ConfigError

    cube, labels, classes, _ = own_scene
    data = load_scene(cube=cube, labels=labels, classes=classes)
    with pytest.raises(ConfigError, match="margin"):
        train(data, "ours", protocol="leakfree", window=7, epochs=1, cache_dir=text_cache, progress=False,
              **{"text.encoder": "stub", "model.window": 9})
