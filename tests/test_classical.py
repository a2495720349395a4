"""The classical rows as the HSI literature runs them: RBF SVM with cross-validated C and gamma away from the grid's
edge, random forest with its trees and features chosen by out-of-bag error, both on every band."""

import numpy as np
from conftest import make_tiny_scene

import hsiclip
from hsiclip.systems import CVSVM, FOREST_FEATURES, FOREST_TREES, OOBForest, _widen, get_system


def _blobs(scale: float, n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n // 3)
    x = rng.normal(size=(n, 6)) + 2.0 * np.eye(3, 6)[y]
    return x * scale, y


def test_the_svm_grid_widens_until_its_choice_is_inside():
    assert _widen([1.0, 4.0, 16.0], 16.0, steps=2) == [1.0, 4.0, 16.0, 64.0, 256.0]
    assert _widen([1.0, 4.0, 16.0], 1.0, steps=1) == [0.25, 1.0, 4.0, 16.0]
    for scale in (1.0, 1e3):  # standardised inside: the choice does not depend on the bands' units
        svm = CVSVM(seed=0).fit(*_blobs(scale))
        p = svm.best_params_
        assert not p["at_edge"]
        assert p["grid_C"][0] < p["C"] < p["grid_C"][1] and p["grid_gamma"][0] < p["gamma"] < p["grid_gamma"][1]
        x, y = _blobs(scale, seed=1)
        assert np.mean(svm.predict(x) == y) > 0.8


def test_the_forest_is_chosen_by_out_of_bag_error():
    x, y = _blobs(1.0)
    forest = OOBForest(seed=0).fit(x, y)
    p = forest.best_params_
    assert p["n_estimators"] in FOREST_TREES and p["max_features"] in FOREST_FEATURES and p["oob_accuracy"] > 50
    assert len(forest.forest.estimators_) == p["n_estimators"]
    assert forest.predict_proba(x).shape == (len(y), 3)


def test_the_classical_rows_read_every_band_and_say_what_they_chose():
    scene = make_tiny_scene(bands=12)
    for name in ("svm", "rf"):
        run = hsiclip.train(scene, name, fraction=0.3, progress=False)
        assert run.preprocess.channels == 12  # every band, no PCA
        assert run.record["recipe"]["pca_components"] == 0
        (chosen,) = run.history
        assert ("C" in chosen) if name == "svm" else ("n_estimators" in chosen)
        assert run.record["oa"] > 80
    assert get_system("svm").components(get_system("svm").recipe("tiny"), 12) == 0
