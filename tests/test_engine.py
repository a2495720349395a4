"""The training loop: a trailing batch of one sample never reaches BatchNorm."""

import numpy as np
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
