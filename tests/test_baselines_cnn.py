"""The 2D-CNN and 3D-CNN rows: other band counts, parameter counts, and a short training run.

Forward + backward at their Indian Pines input is `test_baselines.test_create_model_maps_windows_to_class_scores`.
"""

import pytest
import torch
from conftest import make_tiny_scene

import hsiclip
from hsiclip.efficiency import count_parameters
from hsiclip.models.baselines import cnn2d, cnn3d, get_baseline


@pytest.mark.parametrize("name", ["cnn2d", "cnn3d"])
@pytest.mark.parametrize("bands", [15, 103])
def test_other_band_counts(name, bands):
    model = hsiclip.create_model(name, in_channels=bands, num_classes=9)
    assert isinstance(model, {"cnn2d": cnn2d.CNN2D, "cnn3d": cnn3d.CNN3D}[name])
    w = get_baseline(name).window
    assert model(torch.randn(2, w, w, bands)).shape == (2, 9)


def test_cnn2d_matches_the_papers_parameter_count():
    model = hsiclip.create_model("cnn2d", in_channels=200, num_classes=16)
    # The paper prints "2.76" (M) for 2D-CNN; the DCTN toolbox's Cnn2D on Indian Pines, summed by hand:
    # conv 200->64 1x1 (12,800 + 64) + BN 128; conv 64->128 3x3 (73,728 + 128) + BN 256;
    # conv 128->256 3x3 (294,912 + 256) + BN 512; 15 -> 8 -> 5 -> 3 after the pools, so 256 x 3 x 3 = 2,304 features;
    # Linear 2,304x1,024 + 1,024 + BN 2,048; Linear 1,024x16 + 16 + BN 32.
    assert count_parameters(model) == (12_864 + 128 + 73_856 + 256 + 295_168 + 512
                                       + 2_360_320 + 2_048 + 16_400 + 32) == 2_761_584


def test_cnn3d_parameter_count():
    model = hsiclip.create_model("cnn3d", in_channels=200, num_classes=16)
    # The paper prints "1.54" (M); the toolbox's conv3d (C3DEtAl) on Indian Pines, summed by hand:
    # stage 1: conv 1->4 3x3x3 (108 + 4) + BN 8 + strided conv 4->4 (432 + 4);
    # stage 2: conv 4->8 (864 + 8) + BN 16 + strided conv 8->8 (1,728 + 8);
    # stage 3: conv 8->16 (3,456 + 16) + BN 32 + strided conv 16->16 (6,912 + 16);
    # depth 200 -> 100 -> 50 -> 25, so 16 x 25 x 15 x 15 = 90,000 features; Linear 90,000x16 + 16.
    assert count_parameters(model) == (112 + 8 + 436 + 872 + 16 + 1_736 + 3_472 + 32 + 6_928
                                       + 1_440_016) == 1_453_628


@pytest.mark.parametrize(("name", "epochs", "overrides"), [
    ("cnn2d", 5, {}),
    # the 3D-CNN's lr 1e-4 and batch 100 (one step per epoch on 80 training pixels) need 12+ epochs: a faster rate
    # and smaller batches through the recipe's overrides
    ("cnn3d", 6, {"lr": 1e-3, "batch_size": 20}),
])
def test_trains_on_a_tiny_scene(name, epochs, overrides):
    scene = make_tiny_scene(bands=32)
    run = hsiclip.train(scene, name, seed=0, fraction=0.2, epochs=epochs, progress=False, **overrides)
    assert run.record["recipe"]["epochs"] == epochs and all(run.record["recipe"][k] == v for k, v in overrides.items())
    assert run.metrics["oa"] > 60, run.metrics["oa"]  # three separable spectra: well above chance (33%)
    assert run.record["trainable_params"] > 0 and run.record["flops"] > 0
    seen = run.preprocess.transform(scene.cube)  # no PCA: every band, min-max scaled over the cube
    assert seen.shape == scene.cube.shape and seen.min() == 0.0 and seen.max() == 1.0


def test_cnn2d_trains_on_a_last_batch_of_one():
    model = hsiclip.create_model("cnn2d", in_channels=20, num_classes=3).train()
    out = model(torch.randn(1, 15, 15, 20))  # BatchNorm1d alone would refuse a training batch of one
    out.sum().backward()
    assert out.shape == (1, 3) and torch.isfinite(out).all()
