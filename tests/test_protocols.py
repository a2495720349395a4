"""The leak-free protocols: disjoint splits, preprocessing fitted on training pixels, both protocols compared."""

import numpy as np
import pytest
from conftest import make_tiny_scene
from scipy import ndimage

from hsiclip.data.preprocess import fit_preprocessing
from hsiclip.data.protocols import LEAKFREE_WINDOW, PROTOCOLS, protocol_tag
from hsiclip.data.scenes import Scene
from hsiclip.data.splits import disjoint_split, field_holdout, missing_in_test
from hsiclip.errors import ConfigError, DataError
from hsiclip.experiments.compare import run_comparison
from hsiclip.experiments.report import protocols_markdown
from hsiclip.pipeline import train
from hsiclip.systems import get_system

LEAK_FREE = [p for p in PROTOCOLS if PROTOCOLS.get(p).leak_free]


def _blobs(h=60, w=60):
    """Four classes in rectangles of different sizes, one of them too small to keep test pixels at a wide margin."""
    labels = np.zeros((h, w), dtype=np.int64)
    labels[2:30, 2:40] = 1
    labels[35:58, 5:25] = 2
    labels[33:58, 30:58] = 3
    labels[5:9, 45:49] = 4  # 16 pixels
    return labels


def _scene(labels, bands=4):
    cube = np.random.default_rng(0).random((*labels.shape, bands), dtype=np.float32)
    names = tuple(f"class {c}" for c in range(1, int(labels.max()) + 1))
    return Scene("blobs", cube, labels, names, "synthetic")


def test_every_leak_free_protocol_fits_preprocessing_on_training_pixels_only():
    assert LEAK_FREE and all(PROTOCOLS.get(p).fit_on_train for p in LEAK_FREE)
    with pytest.raises(ConfigError, match="per-class training count"):
        PROTOCOLS.get(LEAK_FREE[0]).split(_scene(_blobs()), 0, 0.1, 5, 10)


@pytest.mark.parametrize("protocol", LEAK_FREE)
@pytest.mark.parametrize("window", [5, 9, 15])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_test_window_contains_a_training_pixel(protocol, window, seed):
    labels = _blobs()
    scene = _scene(labels)
    split = PROTOCOLS.get(protocol).split(scene, seed, 0.1, window, None)
    flat = labels.reshape(-1)
    for c in range(1, 5):  # the training share per class, as the random split takes it
        n = int((flat == c).sum())
        assert int((flat[split.train] == c).sum()) == max(1, round(0.1 * n))
    train_mask = np.zeros(labels.size, dtype=bool)
    train_mask[split.train] = True
    # Chebyshev distance from every pixel to the nearest training pixel
    dist = ndimage.distance_transform_cdt(~train_mask.reshape(labels.shape), metric="chessboard").reshape(-1)
    assert dist[split.test].min() > window // 2
    assert not set(split.train) & set(split.test) and (flat[split.test] > 0).all()
    # everything far enough from training pixels is kept for testing
    assert set(split.test) == set(np.flatnonzero((flat > 0) & (dist > window // 2)))
    assert np.array_equal(split.test, PROTOCOLS.get(protocol).split(scene, seed, 0.1, window, None).test)


def test_classes_stay_in_both_where_the_scene_allows():
    labels = _blobs()
    assert missing_in_test(disjoint_split(labels, window=5, seed=0), labels) == []
    # a 4 x 4 class cannot keep a test pixel 7 pixels away from its own training pixel
    assert missing_in_test(disjoint_split(labels, window=15, seed=0), labels) == [4]
    with pytest.raises(DataError, match="leaves none for testing"):
        disjoint_split(labels, fraction=0.99, window=5)


def test_training_share_is_spread_over_every_field_of_a_class():
    labels = np.zeros((60, 60), dtype=np.int64)
    labels[2:22, 2:22] = 1  # class 1: two fields, 400 and 200 pixels, far apart
    labels[40:60, 45:55] = 1
    labels[30:45, 2:30] = 2  # class 2: one field
    scene = _scene(labels)
    fields = ndimage.label(labels == 1)[0].reshape(-1)
    for seed in (0, 1):
        split = PROTOCOLS.get("leakfree").split(scene, seed, 0.1, 5, None)
        ones = split.train[labels.reshape(-1)[split.train] == 1]
        assert np.bincount(fields[ones], minlength=3)[1:].tolist() == [40, 20]  # in proportion to the fields
        assert not missing_in_test(split, labels)
        one = PROTOCOLS.get("crossfield").split(scene, seed, 0.1, 5, None)
        ones = one.train[labels.reshape(-1)[one.train] == 1]
        assert np.unique(fields[ones]).size == 1  # crossfield: one compact region, the other field unseen


def test_leak_free_validation_holds_out_whole_fields_away_from_training_windows():
    labels = np.zeros((80, 80), dtype=np.int64)
    for r, c in [(2, 2), (2, 42), (42, 2), (42, 42)]:  # class 1: four fields far apart
        labels[r : r + 30, c : c + 15] = 1
    labels[r : r + 30, c + 20 : c + 36] = 2  # class 2: one field, beside class 1's last
    fields = ndimage.label(labels == 1)[0].reshape(-1)
    split = disjoint_split(labels, fraction=0.2, window=5, seed=0)
    inner, val = field_holdout(split, labels, fraction=0.25, window=5, seed=0)
    flat = labels.reshape(-1)
    assert np.array_equal(inner.test, split.test) and set(inner.train) | set(val) <= set(split.train)
    assert not set(inner.train) & set(val) and (flat[val] == 1).all()  # a class with one field keeps it for training
    assert np.unique(fields[val]).size == 1 and not set(fields[val]) & set(fields[inner.train])  # one whole field
    kept = np.zeros(labels.size, dtype=bool)
    kept[inner.train] = True
    dist = ndimage.distance_transform_cdt(~kept.reshape(labels.shape), metric="chessboard").reshape(-1)
    assert dist[val].min() > 2  # no validation pixel inside a remaining training window
    assert len(val) == int((flat[split.train] == 1).sum()) // 4  # its field's strip, whole: far from the others


def test_preprocessing_fitted_on_training_pixels_ignores_test_pixels():
    scene = make_tiny_scene(bands=20)
    split = PROTOCOLS.get("leakfree").split(scene, 0, 0.2, 5, None)
    cube = scene.cube.copy()
    cube.reshape(-1, 20)[split.test] *= 5.0  # any change to test pixels ...
    for k in (4, 0):  # PCA input, and every band min-max scaled
        fitted = fit_preprocessing(scene.cube, k, split.train)
        assert fitted.channels == (k or 20)
        a = fitted.transform(scene.cube).reshape(-1, k or 20)[split.train]
        b = fit_preprocessing(cube, k, split.train).transform(cube).reshape(-1, k or 20)[split.train]
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)  # ... leaves the training pixels' input alone
        c = fit_preprocessing(cube, k).transform(cube).reshape(-1, k or 20)[split.train]
        assert not np.allclose(a, c, atol=1e-3)  # whereas fitting on every pixel sees them


def test_a_system_wider_than_the_margin_is_refused_before_training(tiny_scene):
    system = get_system("hybridsn")
    width = system.window(system.recipe("tiny"))
    with pytest.raises(ConfigError, match=f"reads {width} x {width} windows"):
        train(tiny_scene, "hybridsn", protocol="leakfree", window=width - 2, epochs=1, progress=False)


def test_compare_under_both_protocols(tmp_path):
    scene = make_tiny_scene(h=40, w=40, bands=20)
    assert protocol_tag("leakfree") == (f"leakfree-w{LEAKFREE_WINDOW}", LEAKFREE_WINDOW)
    assert protocol_tag("leakfree", 7) == ("leakfree-w7", 7) and protocol_tag("paper", 7) == ("paper", 0)
    logs = []
    kw = {"work_dir": tmp_path, "progress": False, "log": logs.append, "fraction": 0.2}
    paper = run_comparison(scene, ["rf", "svm"], [0, 1], **kw)
    leak = run_comparison(scene, ["rf", "svm", "hybridsn"], [0, 1], protocol="leakfree", window=7, **kw)
    assert {r["protocol"] for r in leak} == {"leakfree-w7"} and {r["model"] for r in leak} == {"rf", "svm"}
    hybridsn = get_system("hybridsn")
    width = hybridsn.window(hybridsn.recipe("tiny"))
    assert width > 7
    assert any(f"{hybridsn.label} reads {width} x {width} windows" in m for m in logs)  # wider than the margin
    assert (tmp_path / "tiny" / "leakfree-w7-0.2" / "rf" / "seed1.json").is_file()
    assert all(r["n_test"] < p["n_test"] for r, p in zip(leak, paper, strict=True))  # the margin drops pixels
    md = protocols_markdown(paper, leak, command="hsiclip compare --protocol paper,leakfree", machine="test")
    assert f"| {get_system('rf').label} |" in md and f"| {get_system('svm').label} |" in md and "OA lost" in md
    row = next(line for line in md.splitlines() if line.startswith(f"| {get_system('rf').label}"))
    rf_p = np.mean([r["oa"] for r in paper if r["model"] == "rf"])
    rf_l = np.mean([r["oa"] for r in leak if r["model"] == "rf"])
    assert f"| {rf_p - rf_l:.2f} |" in row
