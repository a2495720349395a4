import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from hsiclip.data import preprocess
from hsiclip.data.preprocess import MinMaxScaler, SpectralPCA, fit_preprocessing, load_preprocessing
from hsiclip.data.splits import Split, holdout, kfold, random_split
from hsiclip.data.windows import WindowSampler
from hsiclip.errors import DataError


def test_windows_match_a_per_pixel_loop_with_zero_padding():
    rng = np.random.default_rng(0)
    cube = rng.standard_normal((7, 9, 3)).astype(np.float32)
    sampler = WindowSampler(cube, window=5)
    idx = np.array([0, 8, 30, 62])  # corners and the middle
    got = sampler(idx).numpy()
    padded = np.pad(cube, ((2, 2), (2, 2), (0, 0)))
    for k, i in enumerate(idx):
        r, c = divmod(i, 9)
        np.testing.assert_array_equal(got[k], padded[r : r + 5, c : c + 5])
        np.testing.assert_array_equal(got[k, 2, 2], cube[r, c])  # centred on the pixel
    assert (got[0, :2] == 0).all() and (got[0, :, :2] == 0).all()  # the top-left corner sees zero padding


def test_pca_matches_scikit_learn_whitened(monkeypatch):
    rng = np.random.default_rng(0)
    cube = rng.standard_normal((10, 12, 20)) @ rng.standard_normal((20, 20))
    pca = SpectralPCA.fit(cube.reshape(-1, 20), 5)
    ref = PCA(5, whiten=True, svd_solver="full").fit_transform(cube.reshape(-1, 20))
    monkeypatch.setattr(preprocess, "CHUNK", 17)  # 120 pixels in chunks of 17: the last one partial
    got = pca.transform(cube.astype(np.float32)).reshape(-1, 5)
    np.testing.assert_allclose(np.abs(got), np.abs(ref), atol=1e-3)  # components are defined up to sign
    np.testing.assert_allclose(got.std(0), 1.0, rtol=0.05)  # whitened: unit variance per component
    restored = load_preprocessing(pca.state_dict())
    assert isinstance(restored, SpectralPCA)
    np.testing.assert_array_equal(restored.transform(cube), pca.transform(cube))
    with pytest.raises(DataError, match="bands"):
        pca.transform(cube[..., :10])
    with pytest.raises(DataError, match="cannot keep 21 PCA components"):
        SpectralPCA.fit(cube.reshape(-1, 20), 21)


def test_fit_preprocessing_fits_on_the_pixels_it_is_given():
    rng = np.random.default_rng(0)
    cube = rng.uniform(0, 10, (6, 8, 12)).astype(np.float32)
    cube[0, :4] += 100.0  # four bright pixels
    every = fit_preprocessing(cube, 3)
    dim = np.arange(8, 48)  # the flat pixels without the bright ones
    train = fit_preprocessing(cube, 3, fit_index=dim)
    np.testing.assert_allclose(every.mean, cube.reshape(-1, 12).mean(0), rtol=1e-5)
    np.testing.assert_allclose(train.mean, cube.reshape(-1, 12)[dim].mean(0), rtol=1e-5)
    assert train.transform(cube).shape == (6, 8, 3) and train.channels == 3
    scaler = fit_preprocessing(cube, 0, fit_index=dim)  # 0 components: every band, min-max scaled
    assert isinstance(scaler, MinMaxScaler) and scaler.channels == 12
    out = scaler.transform(cube)
    assert out.dtype == np.float32 and out.reshape(-1, 12)[dim].min() == 0.0
    np.testing.assert_allclose(out.reshape(-1, 12)[dim].max(), 1.0)
    assert out.max() > 10  # the bright pixels, unseen in fitting, fall outside [0, 1]
    again = load_preprocessing(scaler.state_dict())
    assert isinstance(again, MinMaxScaler)
    np.testing.assert_array_equal(again.transform(cube), out)
    with pytest.raises(DataError, match="bands"):
        scaler.transform(cube[..., :5])


def labels_with_counts(counts):
    flat = np.concatenate([np.full(n, c + 1) for c, n in enumerate(counts)] + [np.zeros(50, dtype=int)])
    return np.random.default_rng(1).permutation(flat).reshape(1, -1)


def test_random_split_is_seeded_per_class_and_disjoint():
    labels = labels_with_counts([46, 1428, 20, 100])
    s = random_split(labels, fraction=0.1, seed=3)
    flat = labels.reshape(-1)
    assert [int((flat[s.train] == c).sum()) for c in (1, 2, 3, 4)] == [5, 143, 2, 10]
    assert not set(s.train) & set(s.test)
    assert len(s.train) + len(s.test) == (flat > 0).sum()
    assert (flat[s.test] > 0).all()
    again = random_split(labels, fraction=0.1, seed=3)
    np.testing.assert_array_equal(s.train, again.train)
    assert not np.array_equal(s.train, random_split(labels, fraction=0.1, seed=4).train)
    counted = random_split(labels, count=5, seed=0)
    assert [int((flat[counted.train] == c).sum()) for c in (1, 2, 3, 4)] == [5, 5, 5, 5]


def test_split_round_trip(tmp_path):
    s = random_split(labels_with_counts([10, 10]), fraction=0.3)
    s.save(tmp_path / "split.npz")
    t = Split.load(tmp_path / "split.npz")
    np.testing.assert_array_equal(s.train, t.train)
    np.testing.assert_array_equal(s.test, t.test)


def test_class_with_too_few_pixels_fails_clearly():
    # a lower share cannot help a one-pixel class (it keeps one training pixel), so the advice says what does
    with pytest.raises(DataError, match=r"Oats has only 1 labelled pixel: .*drop the class or label more") as e:
        random_split(labels_with_counts([10, 1]), fraction=0.1, class_names=("Corn", "Oats"))
    assert "lower" not in str(e.value)
    with pytest.raises(DataError, match=r"class 2 has only 3 labelled pixels: .*lower the count"):
        random_split(labels_with_counts([10, 3]), count=3)


def test_holdout_takes_validation_from_training_pixels_only():
    labels = labels_with_counts([200, 60, 20])
    s = random_split(labels, fraction=0.2, seed=0)
    inner, val = holdout(s, labels, 0.25, seed=0)
    assert set(inner.train) | set(val) == set(s.train)
    assert not set(inner.train) & set(val)
    np.testing.assert_array_equal(inner.test, s.test)
    assert len(val) == 10 + 3 + 1


def test_kfold_validation_sets_partition_the_training_pixels():
    labels = labels_with_counts([200, 60, 20])
    s = random_split(labels, fraction=0.2, seed=0)  # 40 + 12 + 4 training pixels
    folds = [kfold(s, labels, 5, f, seed=0) for f in range(5)]
    vals = [val for _, val in folds]
    np.testing.assert_array_equal(np.sort(np.concatenate(vals)), s.train)  # disjoint, and every pixel once
    for inner, val in folds:
        assert not set(inner.train) & set(val) and set(inner.train) | set(val) == set(s.train)
        np.testing.assert_array_equal(inner.test, s.test)
    flat = labels.reshape(-1)
    assert [int((flat[vals[0]] == 1).sum()), int((flat[vals[0]] == 2).sum())] == [8, 3]  # 40/5, ceil(12/5)
    assert int((flat[vals[4]] == 3).sum()) == 0  # 4 pixels of class 3: the fifth fold has none
    with pytest.raises(ValueError, match=r"fold must be in 0\.\.4"):
        kfold(s, labels, 5, 5)


def test_sampler_accepts_tensors():
    sampler = WindowSampler(np.ones((4, 4, 2), np.float32), 3)
    assert sampler(torch.tensor([5, 6])).shape == (2, 3, 3, 2)
