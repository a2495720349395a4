"""The training loop: no batch of one reaches BatchNorm; the options beyond the paper (cosine schedule, flips)."""

import itertools

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


def test_cosine_schedule_warms_up_linearly_then_decays_to_zero(monkeypatch):
    lrs = []
    step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    scene = make_tiny_scene(bands=8)
    sampler = WindowSampler(scene.cube, 3)
    index = np.flatnonzero(scene.labels.reshape(-1) > 0)[:64]  # 4 steps per epoch in batches of 16
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 3 * 8, 3))
    cfg = TrainConfig(epochs=6, batch_size=16, lr=1e-2, schedule="cosine", warmup_epochs=2)
    result = train_model(model, sampler, index, scene.targets[index], cfg, F.cross_entropy, progress=False)
    assert len(lrs) == 24 and [h["epoch"] for h in result.history] == list(range(1, 7))
    np.testing.assert_allclose(lrs[:8], 1e-2 * np.arange(1, 9) / 8)  # linear warm-up over 2 epochs to the peak
    assert all(a > b for a, b in itertools.pairwise(lrs[8:]))  # then strictly decreasing
    assert lrs[-1] < 0.02 * 1e-2  # to about 0 at the last step
    lrs.clear()
    train_model(model, sampler, index, scene.targets[index], TrainConfig(epochs=2, batch_size=16, lr=1e-2),
                F.cross_entropy, progress=False)
    assert lrs == [1e-2] * 8  # the paper's constant rate


@pytest.mark.parametrize("augment", [False, True])
def test_augmentation_feeds_flipped_and_rotated_training_windows(augment):
    from hsiclip.engine import dihedral

    scene = make_tiny_scene(bands=8)
    sampler = WindowSampler(scene.cube, 3)
    pixel = int(np.flatnonzero(scene.labels.reshape(-1) > 0)[7])
    index = np.full(64, pixel)  # one pixel's window, 64 times
    seen = []
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 3 * 8, 3))
    model.register_forward_hook(lambda m, i, o: seen.append(i[0].detach().clone()))
    torch.manual_seed(0)
    train_model(model, sampler, index, scene.targets[index], TrainConfig(epochs=1, batch_size=64, augment=augment),
                F.cross_entropy, progress=False)
    window = sampler(torch.tensor([pixel]))
    views = {tuple(dihedral(window, k).flatten().tolist()) for k in range(8)}
    got = {tuple(w.flatten().tolist()) for w in seen[0]}
    assert got <= views  # only the window itself or its flips/rotations
    assert len(got) == (8 if augment else 1)  # 64 seeded draws of the 8 views: all of them
