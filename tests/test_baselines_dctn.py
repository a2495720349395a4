"""SS-TMNet and DCTN (the DCTN authors' toolbox): parameter counts against the papers, shapes, training."""

from dataclasses import replace
from functools import partial

import pytest
import torch
from conftest import make_tiny_scene

import hsiclip
from hsiclip.efficiency import count_parameters
from hsiclip.models.baselines import get_baseline
from hsiclip.models.baselines.dctn import DCTN, EmbedSize, embed_size
from hsiclip.models.baselines.sstmnet import SSTMNet

MODELS = {"sstmnet": SSTMNet, "dctn": DCTN}
SHALLOW = (1, 1, 1, 1)  # one block per stage: every module type of the full network, built and run in seconds


def test_sstmnet_matches_the_papers_parameter_count():
    with torch.device("meta"):  # sizes only, no initialisation of 83 M parameters
        model = SSTMNet(200, 16, 15)
    # The paper's "83.33 MB" is 83.33 M parameters. Summed by hand on Indian Pines (E = 8 x 45 = 360):
    # embedding 6,056 (Conv3d 400, 4 x 4 multi-scale 336, BN 8, Conv3d 2,600, 2 x 8 x 8 multi-scale 2 x 1,312, BN 16,
    # point 72); a block of width d on an s x s grid has 16d^2 + 26d + s^4 + s^2 + 3 (2 LayerNorms 4d; two spatial
    # branches 2 x (depthwise 4d + q/k/v/out 4d^2 + 4d + gamma); spectral 1x1 d^2 + d, out s^4 + s^2, gamma;
    # proj d^2 + d; MLP 6d^2 + 4d): 13 x 2,087,123 (d 360, s 8) + 13 x 4,207,891 (d 512, s 4); transition and skip
    # 2 x (360 x 512 x 4 + 512); LayerNorm 1,024; head 512 x 16 + 16.
    by_hand = 6_056 + 13 * 2_087_123 + 13 * 4_207_891 + 2 * 737_792 + 1_024 + 8_208
    assert count_parameters(model) == by_hand == 83_326_054
    assert round(count_parameters(model) / 1e6, 2) == 83.33


def test_dctn_matches_the_papers_parameter_count():
    with torch.device("meta"):
        model = DCTN(200, 16, 15)
    # The paper's "45.32 MB" is 45.32 M parameters. Summed by hand on Indian Pines (G 11, K 40, D 55: E = 440, the
    # spectrum padded to 209 bands): embedding 2,557,866 (grouped 1x1 8,800 + BN 880; grouped 3x3 158,840, 5x5 440,440
    # and full 1x1 194,040, each + BN 880; Conv3d 2,160 and 7,208, BN 16; 2 weights; 3x3 stride 2 1,742,840); a block
    # of width d on an s x s grid has 13d^2 + 34d + 2sd + 20 (2 GroupNorms 4d; three 1x1 3d^2; gates 5 + 6 + 7;
    # row/column -> band 2(sd + d); fuse 3d^2; proj d^2 + d; 2 weights; FFN 6d^2 + 27d): 4 x 2,537,940 (d 440, s 7)
    # + 8 x 3,428,372 (d 512, s 3); transition and skip 2 x (440 x 512 x 4 + 512); convolutional branch 2,582,400;
    # fuse 1,536 x 512 + 512; LayerNorm 1,024; head 512 x 16 + 16.
    by_hand = 2_557_866 + 4 * 2_537_940 + 8 * 3_428_372 + 2 * 901_632 + 2_582_400 + 786_944 + 1_024 + 8_208
    assert count_parameters(model) == by_hand == 45_318_442
    assert round(count_parameters(model) / 1e6, 2) == 45.32


def test_dctn_takes_the_toolbox_embedding_of_the_nearest_scene():
    assert [embed_size(b).dim for b in (103, 144, 200)] == [320, 320, 440]  # models.py's embed_dims[0] per scene
    assert embed_size(204).dim == 440 and embed_size(15).dim == 320  # Salinas takes Indian Pines' setting


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_on_indian_pines_windows(name):
    torch.manual_seed(0)
    model = MODELS[name](200, 16, 15, depths=SHALLOW)
    x = torch.rand(2, 15, 15, 200, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 16)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("bands", [15, 103])
def test_any_band_count(name, bands):
    model = MODELS[name](bands, 9, 15, depths=SHALLOW).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 15, 15, bands)).shape == (1, 9)


# Small versions for the training path (a full network takes 10-25 s per training step on 2 CPU cores): one block
# per stage, width 32, 7x7 windows, and for DCTN an embedding of 2 groups of 16 (E = 32).
SMALL = {
    "sstmnet": partial(SSTMNet, depths=SHALLOW, width=32),
    "dctn": partial(DCTN, depths=SHALLOW, width=32, embed=EmbedSize(bands=32, groups=2, group_width=16, depth=4)),
}


# the toolbox's rate (1e-4) needs 15-30 epochs; the recipe's overrides make it 1e-3 in batches of 20
@pytest.mark.parametrize(("name", "epochs"), [("sstmnet", 6), ("dctn", 6)])
def test_small_versions_learn_the_tiny_scene(name, epochs, monkeypatch):
    from hsiclip.systems import NetworkSystem

    small = replace(get_baseline(name), build=SMALL[name], window=7)
    monkeypatch.setattr(NetworkSystem, "spec", property(lambda self: small))  # the system builds the small one
    run = hsiclip.train(make_tiny_scene(bands=32), name, seed=0, fraction=0.2, epochs=epochs, progress=False,
                        lr=1e-3, batch_size=20)
    assert run.window == 7 and count_parameters(run.model) < 2_000_000  # the small network was trained
    assert (run.recipe.lr, run.recipe.batch_size, len(run.history)) == (1e-3, 20, epochs)
    assert run.metrics["oa"] > 60, run.metrics["oa"]  # three separable spectra: well above chance (33%)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "epochs"), [("sstmnet", 4), ("dctn", 4)])
def test_full_networks_learn_the_tiny_scene(name, epochs):
    """The registered networks at full size (about 1-2 minutes each on one free CPU core, far more under load)."""
    run = hsiclip.train(make_tiny_scene(bands=32), name, seed=0, fraction=0.2, epochs=epochs, progress=False)
    assert run.metrics["oa"] > 60, run.metrics["oa"]
    assert run.record["trainable_params"] > 0 and run.record["flops"] > 0
