"""morphFormer and HiT: parameter counts, their layers, and a short training run of a small member of each family.

Forward + backward at their Indian Pines input is `test_baselines.test_create_model_maps_windows_to_class_scores`.
"""

import dataclasses
import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import make_tiny_scene

import hsiclip
import hsiclip.models.baselines.morphformer
from hsiclip.data.protocols import PROTOCOLS
from hsiclip.efficiency import count_parameters
from hsiclip.models.baselines import get_baseline
from hsiclip.models.baselines.hit import HiT, embedding_width
from hsiclip.models.baselines.morphformer import MorphFormer


def _indian_pines_model(name: str) -> torch.nn.Module:
    """The model at its Indian Pines input (no PCA: all 200 bands), 16 classes, on the meta device (sizes only)."""
    with torch.device("meta"):
        return get_baseline(name).build(200, 16, get_baseline(name).window)


def test_morphformer_matches_the_toolbox_layer_sizes():
    model = _indian_pines_model("morphformer")
    # Neither the paper nor the code states a count; the toolbox's morphFormer on Indian Pines, summed by hand:
    # Conv3d 1->8 9x3x3 (648 + 8) + BN 16 = 672; HetConv on 8 x 192 = 1536 maps: grouped 3x3 (16 groups)
    # 64 x 96 x 9 + 64 = 55,360, 1x1 1536 x 64 + 64 = 98,368, BN 128 -> 153,856; tokenizer 32x64 + 64x64,
    # class token 64, position 33x64 -> 8,320; per block: 4 structuring elements 16 x 32 x k^2, 1x1 convs 2 x 272,
    # 3x3 convs 2 x 2,320, BNs 2 x 32, LayerNorms 2 x 128, q/k/v 3 x 64x64, out 64x64 + 64
    # (k = 3: 40,384; k = 5: 73,152); final LayerNorm 128; head 64x16 + 16 = 1,040.
    assert count_parameters(model) == 672 + 153_856 + 8_320 + 40_384 + 73_152 + 128 + 1_040 == 277_552
    assert MorphFormer(103, 9).group_conv.groups == 8  # 8 x 95 maps is no multiple of 16: 8 groups, as the code


def test_morphformer_trains_with_the_toolbox_weight_decay(monkeypatch):
    seen = {}

    def fake_train_model(model, sampler, index, target, cfg, loss_fn, progress=True, checkpoint=None):
        seen.update(cfg=cfg, loss_fn=loss_fn)

    monkeypatch.setattr(hsiclip.models.baselines.morphformer, "train_model", fake_train_model)
    spec = get_baseline("morphformer")
    from hsiclip.config import TrainConfig

    spec.fit(None, None, None, None, TrainConfig(epochs=3, batch_size=32, lr=5e-4), progress=False)
    assert seen["cfg"].weight_decay == 5e-3 and seen["cfg"].lr == 5e-4 and seen["cfg"].epochs == 3
    assert seen["loss_fn"] is F.cross_entropy


@pytest.mark.parametrize("kind", ["erosion", "dilation"])
@pytest.mark.parametrize("kernel", [3, 5])
def test_morphology_is_min_or_max_plus_over_the_zero_padded_window(kind, kernel):
    torch.manual_seed(0)
    model = MorphFormer(30, 4)  # its blocks use 3x3 then 5x5 structuring elements
    layer = getattr(model.blocks[(3, 5).index(kernel)].spatial, kind)  # 32 token maps of 8x8 -> 16 maps
    assert layer.kernel == kernel
    torch.nn.init.normal_(layer.weight)
    c_out = layer.weight.shape[0]
    c_in = layer.weight.shape[1] // kernel**2
    x = torch.randn(5, c_in, 8, 8)
    pad = (kernel - 1) // 2
    patches = F.unfold(F.pad(x, (pad,) * 4), kernel)[:, None]  # (B, 1, C_in k k, 64)
    s = layer.weight[None, :, :, None]
    expected = (patches - s).amin(dim=2) if kind == "erosion" else (patches + s).amax(dim=2)
    torch.testing.assert_close(layer(x).flatten(2), expected)
    layer(x).sum().backward()  # the gradient reaches one structuring-element entry per output value
    assert layer.weight.grad.abs().sum() == pytest.approx(5 * c_out * 64)


def test_hit_matches_the_papers_parameter_count():
    # the toolbox's per-scene stage-1 widths: Indian Pines 400, Pavia University 208, Houston 288
    assert [embedding_width(b) for b in (200, 103, 144)] == [400, 208, 288]
    model = _indian_pines_model("hit")
    # The paper under reproduction lists 51.23 (M). Summed by hand on Indian Pines: embedding 485 + 3,896;
    # 7 blocks at width 400 of 1,447,300 (LayerNorms 1,600, depthwise 2 x 1,200, 1x1 160,000, reweight MLP
    # 40,100 + 121,200, projection 160,400, MLP 481,200 + 480,400); 2x2 convolution 400 -> 512: 819,712;
    # 17 blocks at width 512 of 2,368,640; head LayerNorm 1,024 + 512x16 + 16.
    total = 485 + 3_896 + 7 * 1_447_300 + 819_712 + 17 * 2_368_640 + 1_024 + 8_208
    assert count_parameters(model) == total == 51_231_305
    assert round(total / 1e6, 2) == 51.23


def test_hit_runs_at_other_band_counts():
    model = HiT(15, 4, 15, depths=(1, 1, 1, 1), widths=(None, None, 64, 64))
    assert model(torch.rand(2, 15, 15, 15)).shape == (2, 4)


@pytest.mark.parametrize(("name", "small"), [
    # The full models are too slow for a CPU test (HiT: 51 M parameters; morphFormer's max-plus layers), so the
    # training path runs a smaller member of each family: same code, fewer or narrower blocks, and a faster rate.
    ("morphformer", {"build": functools.partial(MorphFormer, kernels=(3,)), "window": 7, "batch_size": 16,
                     "lr": 1e-3}),
    ("hit", {"build": functools.partial(HiT, depths=(1, 1, 1, 1), widths=(None, None, 64, 64)), "batch_size": 16,
             "lr": 1e-3}),
])
def test_trains_on_the_same_split_as_ours(name, small, monkeypatch):
    from hsiclip.systems import NetworkSystem

    spec = dataclasses.replace(get_baseline(name), **small)
    monkeypatch.setattr(NetworkSystem, "spec", property(lambda self: spec))  # the system builds the small one
    scene = make_tiny_scene(bands=32)
    run = hsiclip.train(scene, name, seed=0, fraction=0.2, epochs=3, progress=False)
    split = PROTOCOLS.get("paper").split(scene, 0, 0.2, 0, None)
    np.testing.assert_array_equal(run.split.test, split.test)
    assert sum(sum(row) for row in run.record["confusion"]) == len(split.test)  # scored on exactly those pixels
    assert run.metrics["oa"] > 60, run.metrics["oa"]  # three separable spectra: well above chance (33%)
    assert run.record["trainable_params"] > 0 and run.record["flops"] > 0 and run.record["train_s"] > 0
