import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, cohen_kappa_score, confusion_matrix

from hsiclip.metrics import classification_metrics


def test_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 500)
    p = np.where(rng.random(500) < 0.7, y, rng.integers(0, 6, 500))
    m = classification_metrics(y, p, 6)
    assert m["oa"] == pytest.approx(100 * accuracy_score(y, p))
    assert m["aa"] == pytest.approx(100 * balanced_accuracy_score(y, p))
    assert m["kappa"] == pytest.approx(100 * cohen_kappa_score(y, p))
    assert m["confusion"] == confusion_matrix(y, p, labels=range(6)).tolist()
    assert m["per_class"][2] == pytest.approx(100 * np.mean(p[y == 2] == 2))


def test_absent_class_is_none_and_left_out_of_aa():
    y = np.array([0, 0, 1, 1])
    p = np.array([0, 1, 1, 1])
    m = classification_metrics(y, p, 3)
    assert m["per_class"] == [50.0, 100.0, None]
    assert m["aa"] == pytest.approx(75.0)
    assert np.array(m["confusion"]).shape == (3, 3)
