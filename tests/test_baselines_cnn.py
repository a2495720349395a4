"""The 2D-CNN and 3D-CNN rows: forward + backward on their own input, parameter counts, and a short training run."""

import pytest
import torch
from conftest import make_tiny_scene

from hsiclip.compare import train_baseline
from hsiclip.efficiency import count_parameters
from hsiclip.models.baselines import cnn2d, cnn3d, get_baseline  # importing registers them


@pytest.mark.parametrize("name", ["cnn2d", "cnn3d"])
def test_forward_backward_on_indian_pines_input(name):
    spec = get_baseline(name)
    bands = spec.input_bands("indian_pines", 200)
    assert bands == 200  # no PCA: every band, as the DCTN toolbox
    model = spec.build(bands, 16, spec.window)
    assert isinstance(model, {"cnn2d": cnn2d.CNN2D, "cnn3d": cnn3d.CNN3D}[name])
    x = torch.randn(2, spec.window, spec.window, bands, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 16)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", ["cnn2d", "cnn3d"])
@pytest.mark.parametrize("bands", [15, 103])
def test_other_band_counts(name, bands):
    spec = get_baseline(name)
    model = spec.build(bands, 9, spec.window)
    assert model(torch.randn(2, spec.window, spec.window, bands)).shape == (2, 9)


def test_cnn2d_matches_the_papers_parameter_count():
    spec = get_baseline("cnn2d")
    assert (spec.window, spec.pca_for("indian_pines"), spec.batch_size, spec.epochs, spec.lr) == (15, 0, 32, 200, 1e-4)
    model = spec.build(200, 16, spec.window)
    # The paper prints "2.76" (M) for 2D-CNN; the DCTN toolbox's Cnn2D on Indian Pines, summed by hand:
    # conv 200->64 1x1 (12,800 + 64) + BN 128; conv 64->128 3x3 (73,728 + 128) + BN 256;
    # conv 128->256 3x3 (294,912 + 256) + BN 512; 15 -> 8 -> 5 -> 3 after the pools, so 256 x 3 x 3 = 2,304 features;
    # Linear 2,304x1,024 + 1,024 + BN 2,048; Linear 1,024x16 + 16 + BN 32.
    assert count_parameters(model) == (12_864 + 128 + 73_856 + 256 + 295_168 + 512
                                       + 2_360_320 + 2_048 + 16_400 + 32) == 2_761_584


def test_cnn3d_parameter_count():
    spec = get_baseline("cnn3d")
    assert (spec.window, spec.pca_for("indian_pines"), spec.batch_size, spec.epochs, spec.lr) == (15, 0, 100, 100, 1e-4)
    model = spec.build(200, 16, spec.window)
    # The paper prints "1.54" (M); the toolbox's conv3d (C3DEtAl) on Indian Pines, summed by hand:
    # stage 1: conv 1->4 3x3x3 (108 + 4) + BN 8 + strided conv 4->4 (432 + 4);
    # stage 2: conv 4->8 (864 + 8) + BN 16 + strided conv 8->8 (1,728 + 8);
    # stage 3: conv 8->16 (3,456 + 16) + BN 32 + strided conv 16->16 (6,912 + 16);
    # depth 200 -> 100 -> 50 -> 25, so 16 x 25 x 15 x 15 = 90,000 features; Linear 90,000x16 + 16.
    assert count_parameters(model) == (112 + 8 + 436 + 872 + 16 + 1_736 + 3_472 + 32 + 6_928
                                       + 1_440_016) == 1_453_628


@pytest.mark.parametrize(("name", "epochs"), [("cnn2d", 5), ("cnn3d", 12)])
def test_trains_on_a_tiny_scene(name, epochs):
    # lr 1e-4 and batch 100 (one step per epoch on 80 training pixels) make the 3D-CNN need more epochs
    m = train_baseline(name, make_tiny_scene(bands=32), seed=0, fraction=0.2, epochs=epochs, progress=False)
    assert m["oa"] > 60, m["oa"]  # three separable spectra: well above chance (33%)
    assert m["trainable_params"] > 0 and m["flops"] > 0


def test_cnn2d_trains_on_a_last_batch_of_one():
    model = get_baseline("cnn2d").build(20, 3, 15).train()
    out = model(torch.randn(1, 15, 15, 20))  # BatchNorm1d alone would refuse a training batch of one
    out.sum().backward()
    assert out.shape == (1, 3) and torch.isfinite(out).all()
