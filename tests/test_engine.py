"""The training loop: no batch of one reaches BatchNorm; the options beyond the paper (schedule, EMA, flips, TTA)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import make_tiny_scene
from torch import nn

from hsiclip.config import TrainConfig
from hsiclip.data.windows import WindowSampler
from hsiclip.engine import train_model


def _run(model: nn.Module, n: int, epochs: int = 2):
    scene = make_tiny_scene(bands=8)
    sampler = WindowSampler(scene.cube, 3)
    index = np.flatnonzero(scene.labels.reshape(-1) > 0)[:n]
    return train_model(model, sampler, index, scene.targets[index], TrainConfig(epochs=epochs, batch_size=32),
                       F.cross_entropy, progress=False)


def test_a_single_sample_batch_is_skipped_for_batchnorm_models():
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 3 * 8, 3), bn)
    result = _run(model, n=33)  # 32 + 1: BatchNorm1d would raise on the batch of one
    assert int(bn.num_batches_tracked) == 2  # one full batch per epoch, the single sample skipped
    assert all(np.isfinite(h["loss"]) for h in result.history)


def test_models_without_batchnorm_see_every_sample():
    torch.manual_seed(0)
    calls = []
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 3 * 8, 3))
    model.register_forward_hook(lambda m, i, o: calls.append(len(o)))
    _run(model, n=33, epochs=1)
    assert calls == [32, 1]


def test_the_eight_flips_and_rotations_are_distinct_and_undo_each_other():
    from hsiclip.engine import dihedral, random_dihedral

    x = torch.arange(2 * 3 * 3 * 2, dtype=torch.float32).reshape(2, 3, 3, 2)
    views = [dihedral(x, k) for k in range(8)]
    assert torch.equal(views[0], x)
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8
    for v in views:  # a flip/rotation moves pixels, never channels
        assert torch.equal(v.sum(dim=(1, 2)), x.sum(dim=(1, 2)))
    torch.manual_seed(0)
    out = random_dihedral(x.repeat(50, 1, 1, 1))
    seen = {tuple(o.flatten().tolist()) for o in out}
    assert seen <= {tuple(v[i].flatten().tolist()) for v in views for i in range(2)} and len(seen) > 8


def test_schedule_ema_augmentation_and_best_epoch_on_validation():
    from hsiclip.engine import predict

    scene = make_tiny_scene(bands=8)
    sampler = WindowSampler(scene.cube, 3)
    labelled = np.flatnonzero(scene.labels.reshape(-1) > 0)
    rng = np.random.default_rng(0)
    train, val = rng.permutation(labelled)[:60], rng.permutation(labelled)[60:120]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 3 * 8, 16), nn.ReLU(), nn.Linear(16, 3))
    cfg = TrainConfig(epochs=6, batch_size=16, lr=3e-2, schedule="cosine", warmup_epochs=2, augment=True, ema=0.9)
    result = train_model(model, sampler, train, scene.targets[train], cfg, F.cross_entropy, progress=False,
                         val=(val, scene.targets[val]))
    epochs, best = result.history[:-1], result.history[-1]
    assert [h["epoch"] for h in epochs] == list(range(1, 7)) and all("val_acc" in h for h in epochs)
    assert best["best_val_acc"] == max(h["val_acc"] for h in epochs)
    assert best["best_epoch"] == max(h["epoch"] for h in epochs if h["val_acc"] == best["best_val_acc"])
    pred, _ = predict(model, sampler, val, progress=False)  # the kept weights are the best epoch's (EMA) weights
    assert 100 * np.mean(pred == scene.targets[val]) == pytest.approx(best["best_val_acc"])


def test_spectral_fill_replaces_whole_windows_by_their_centre_pixel():
    from hsiclip.engine import spectral_fill

    torch.manual_seed(0)
    x = torch.randn(400, 5, 5, 3)
    out = spectral_fill(x, 0.5)
    filled = (out == out[:, 2:3, 2:3]).all(dim=(1, 2, 3))  # every pixel equals the centre
    assert 150 < int(filled.sum()) < 250  # about half the windows
    assert torch.equal(out[~filled], x[~filled]) and torch.equal(out[:, 2, 2], x[:, 2, 2])
    assert torch.equal(spectral_fill(x, 0.0), x) and bool((spectral_fill(x, 1.0) == x[:, 2:3, 2:3]).all())


def test_test_time_augmentation_averages_the_eight_views():
    from hsiclip.engine import dihedral, predict

    scene = make_tiny_scene(bands=8)
    sampler = WindowSampler(scene.cube, 5)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(5 * 5 * 8, 3)).eval()
    index = np.arange(40)
    _, conf = predict(model, sampler, index, progress=False, tta=True)
    with torch.no_grad():
        w = sampler(torch.as_tensor(index))
        probs = sum(model(dihedral(w, k)).softmax(1) for k in range(8)) / 8
    np.testing.assert_allclose(conf, probs.max(1).values.numpy(), rtol=1e-5)


def test_spectral_noise_perturbs_the_training_windows_only():
    scene = make_tiny_scene(bands=8)
    sampler = WindowSampler(scene.cube, 3)
    index = np.flatnonzero(scene.labels.reshape(-1) > 0)[:16]
    seen = []
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 3 * 8, 3))
    model.register_forward_hook(lambda m, i, o: seen.append(i[0].detach().clone()))
    for noise in (0.0, 0.5):
        torch.manual_seed(0)
        train_model(model, sampler, index, scene.targets[index], TrainConfig(epochs=1, batch_size=16,
                    spectral_noise=noise), F.cross_entropy, progress=False)
    clean, noisy = seen
    diff = noisy - clean  # the same windows in the same order (same seed, same shuffle), plus noise of std 0.5
    assert clean.shape == noisy.shape and float(diff.std()) == pytest.approx(0.5, rel=0.15)
    assert abs(float(diff.mean())) < 0.1
