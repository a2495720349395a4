"""The pixel-wise baselines of the paper's Table 8: GAF-NAU and Forward-Forward ("FFA + BP")."""

import dataclasses
import functools
import math

import pytest
import torch
from conftest import make_tiny_scene

import hsiclip.compare
import hsiclip.models.baselines.forward_forward as ff_module
import hsiclip.models.baselines.gaf_nau as gaf_module
from hsiclip.compare import baseline_input, train_baseline
from hsiclip.config import TrainConfig
from hsiclip.data.splits import random_split
from hsiclip.data.windows import WindowSampler
from hsiclip.efficiency import count_parameters
from hsiclip.models.baselines import get_baseline
from hsiclip.models.baselines.gaf_nau import GAFNAU, gramian_angular_field


@pytest.mark.parametrize("name", ["gaf_nau", "forward_forward"])
def test_forward_backward_on_its_own_input(name):
    spec = get_baseline(name)
    bands = spec.input_bands("indian_pines", 200)
    assert spec.window == 1  # pixel-wise
    model = spec.build(bands, 16, spec.window)
    x = torch.rand(2, spec.window, spec.window, bands, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 16)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


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
    spec = get_baseline("gaf_nau")
    assert (spec.pca_for("indian_pines"), spec.epochs, spec.batch_size, spec.lr) == (0, 100, 64, 1e-3)
    model = spec.build(200, 16, spec.window)
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


def test_forward_forward_parameter_count_and_settings():
    spec = get_baseline("forward_forward")
    assert spec.fit is ff_module.fit
    assert (spec.pca_for("pavia_university"), spec.epochs, spec.batch_size, spec.lr) == (30, 100, 100, 1e-3)
    model = spec.build(spec.pca_for("indian_pines"), 16, spec.window)
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
    split = random_split(scene.labels, fraction=0.2, seed=0)
    sampler = WindowSampler(baseline_input(scene.cube, 30), 1)
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
        slim = dataclasses.replace(get_baseline(name), batch_size=16,
                                   build=functools.partial(gaf_module.GAFNAU, base=8, blocks=(1, 1, 1, 1)))
        monkeypatch.setattr(hsiclip.compare, "get_baseline", lambda _: slim)
    scene = make_tiny_scene(bands=32)
    m = train_baseline(name, scene, seed=0, fraction=0.2, epochs=epochs, progress=False)
    split = random_split(scene.labels, fraction=0.2, seed=0)
    assert sum(sum(row) for row in m["confusion"]) == len(split.test)  # scored on exactly our test pixels
    assert m["oa"] > 60, m["oa"]  # three separable spectra: well above chance (33%)
    assert m["trainable_params"] > 0 and m["flops"] > 0 and m["train_s"] > 0
