"""The pixel-wise baselines of the paper's Table 8: GAF-NAU and Forward-Forward ("FFA + BP").

Forward + backward at their Indian Pines input is `test_baselines.test_create_model_maps_windows_to_class_scores`.
"""

import dataclasses
import functools
import math

import numpy as np
import pytest
import torch
from conftest import make_tiny_scene

import hsiclip
import hsiclip.models.baselines.forward_forward as ff_module
import hsiclip.models.baselines.gaf_nau as gaf_module
from hsiclip.config import TrainConfig
from hsiclip.data.preprocess import fit_preprocessing
from hsiclip.data.protocols import PROTOCOLS
from hsiclip.data.windows import WindowSampler
from hsiclip.efficiency import count_parameters
from hsiclip.models.baselines import get_baseline
from hsiclip.models.baselines.gaf_nau import GAFNAU, gramian_angular_field


@pytest.mark.parametrize("bands", [15, 103])
def test_gaf_nau_takes_any_band_count_and_a_larger_window(bands):
    model = GAFNAU(bands, 9, 3, base=8, blocks=(1, 1, 1, 1), side=None)  # slim, same wiring, GAF at the band count
    assert model.side % 32 == 0 and model.side >= bands
    x = torch.rand(2, 3, 3, bands)
    assert model(x).shape == (2, 9)
    assert model.encode(x).shape == (2, 1, model.side, model.side)


def test_gramian_angular_field_is_cos_of_summed_angles():
    spectrum = torch.rand(3, 20, dtype=torch.float64)
    g = gramian_angular_field(spectrum, eps=1e-12)
    lo, hi = spectrum.min(1, keepdim=True).values, spectrum.max(1, keepdim=True).values
    phi = torch.arccos(2 * (spectrum - lo) / (hi - lo) - 1)  # (B, L)
    expected = torch.cos(phi[:, :, None] + phi[:, None, :])
    assert torch.allclose(g, expected, atol=1e-5)
    assert torch.allclose(g, g.transpose(1, 2))
    # invariant to each pixel's scale and offset: the field encodes the spectrum's shape only
    assert torch.allclose(gramian_angular_field(3 * spectrum + 1, eps=1e-12), g, atol=1e-5)


def test_gaf_nau_parameter_count():
    model = hsiclip.create_model("gaf_nau", in_channels=200, num_classes=16)
    assert model.side == 64  # spectra resampled to 64 points (the parameter count does not depend on it)
    # Neither the paper nor the code reachable to us states a count; summed by hand from the layer sizes:
    # ResNet-50 trunk without fc 23,508,032 less the stem's 2 missing input channels (2 x 64 x 7 x 7) = 23,501,760;
    # shallow Conv3x3 1->32 + BN = 288 + 64; decoder blocks (Conv3x3 + BN twice, convolutions bias-free):
    # 3072->256 and 256->256 = 7,668,736; 768->128, 128->128 = 1,032,704; 384->64, 64->64 = 258,304;
    # 128->64, 64->64 = 110,848; 96->32, 32->32 = 36,992; classifier Conv3x3 32->16 + bias = 4,624;
    # alpha and beta for 3 attention points = 6.
    trunk = 23_508_032 - 2 * 64 * 7 * 7
    assert count_parameters(model) == trunk + 352 + 7_668_736 + 1_032_704 + 258_304 + 110_848 + 36_992 + 4_624 + 6
    assert count_parameters(model) == 32_614_326


def test_forward_forward_parameter_count():
    model = hsiclip.create_model("forward_forward", in_channels=30, num_classes=16)
    # loeweX/Forward-Forward sizes on 30 PCA components with a 16-way label appended, summed by hand:
    # Linear 46->1000 = 47,000; 2 x Linear 1000->1000 = 2,002,000; softmax layer 2000->16 without bias = 32,000.
    assert count_parameters(model) == 47_000 + 2 * 1_001_000 + 32_000 == 2_081_000


def test_forward_forward_goodness_prefers_nothing_at_start_and_is_per_label():
    model = ff_module.ForwardForward(30, 4, hidden=50)
    x = torch.rand(5, 1, 1, 30)
    g = model.goodness(x)
    assert g.shape == (5, 4) and (g >= 0).all()
    assert torch.allclose(model(x), torch.zeros(5, 4))  # the softmax layer starts at zero


def test_forward_forward_fit_lowers_the_ff_loss():
    torch.manual_seed(0)
    scene = make_tiny_scene(bands=32)
    split = PROTOCOLS.get("paper").split(scene, 0, 0.2, 0, None)
    sampler = WindowSampler(fit_preprocessing(scene.cube, 30).transform(scene.cube), 1)
    model = ff_module.ForwardForward(30, 3, hidden=100)
    cfg = TrainConfig(epochs=8, batch_size=40, lr=1e-3)
    result = ff_module.fit(model, sampler, split.train, scene.targets[split.train], cfg, progress=False)
    losses = [h["ff_loss"] for h in result.history]
    assert len(losses) == 8 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.8 * losses[0], losses
    assert result.seconds > 0


@pytest.mark.parametrize(("name", "epochs"), [("gaf_nau", 8), ("forward_forward", 10)])
def test_trains_on_the_same_split_as_ours(name, epochs, monkeypatch):
    if name == "gaf_nau":  # the full ResNet-50 U-Net takes minutes on CPU: train a slim one through the same path,
        # in batches of 16 so that its batch-norm running statistics settle within the few steps
        from hsiclip.systems import NetworkSystem

        slim = dataclasses.replace(get_baseline(name), batch_size=16,
                                   build=functools.partial(gaf_module.GAFNAU, base=8, blocks=(1, 1, 1, 1)))
        monkeypatch.setattr(NetworkSystem, "spec", property(lambda self: slim))
    scene = make_tiny_scene(bands=32)
    run = hsiclip.train(scene, name, seed=0, fraction=0.2, epochs=epochs, progress=False)
    split = PROTOCOLS.get("paper").split(scene, 0, 0.2, 0, None)
    np.testing.assert_array_equal(run.split.test, split.test)
    assert sum(sum(row) for row in run.record["confusion"]) == len(split.test)  # scored on exactly those pixels
    assert run.metrics["oa"] > 60, run.metrics["oa"]  # three separable spectra: well above chance (33%)
    assert run.record["trainable_params"] > 0 and run.record["flops"] > 0 and run.record["train_s"] > 0
    if name == "forward_forward":  # trained by its own fit (the Forward-Forward loss), not by cross-entropy
        assert run.preprocess.channels == 30 and all("ff_loss" in h for h in run.history)
