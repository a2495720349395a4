"""morphFormer and HiT: forward + backward at their own input size, parameter counts, and a short training run."""

import dataclasses
import functools

import pytest
import torch
import torch.nn.functional as F

import hsiclip.models.baselines.hit  # importing registers "hit" and "morphformer" (the package import comes later)
import hsiclip.models.baselines.morphformer
from hsiclip.efficiency import count_parameters
from hsiclip.models.baselines import get_baseline
from hsiclip.models.baselines.hit import HiT, embedding_width
from hsiclip.models.baselines.morphformer import MorphFormer, _Morphology


@pytest.fixture(scope="module")
def indian_pines_models() -> dict[str, torch.nn.Module]:
    """Each model at its Indian Pines input (no PCA: all 200 bands), 16 classes; built once (HiT has 51 M weights)."""
    torch.manual_seed(0)
    return {name: get_baseline(name).build(200, 16, get_baseline(name).window) for name in ("morphformer", "hit")}


@pytest.mark.parametrize("name", ["morphformer", "hit"])
def test_forward_backward_on_indian_pines_input(name, indian_pines_models):
    spec = get_baseline(name)
    bands = spec.input_bands("indian_pines", 200)
    assert bands == 200  # no PCA: every band
    model = indian_pines_models[name]
    x = torch.rand(2, spec.window, spec.window, bands, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 16)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_morphformer_matches_the_toolbox_settings_and_layer_sizes(indian_pines_models):
    spec = get_baseline("morphformer")
    settings = (spec.window, spec.pca_for("indian_pines"), spec.batch_size, spec.epochs, spec.lr)
    assert settings == (15, 0, 32, 200, 5e-4)
    model = indian_pines_models["morphformer"]
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

    def fake_train_model(model, sampler, index, target, cfg, loss_fn, progress=True):
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
    layer = _Morphology(4, 3, kernel, kind)
    torch.nn.init.normal_(layer.weight)
    x = torch.randn(5, 4, 8, 8)
    pad = (kernel - 1) // 2
    patches = F.unfold(F.pad(x, (pad,) * 4), kernel)[:, None]  # (B, 1, 4 k k, 64)
    s = layer.weight[None, :, :, None]
    expected = (patches - s).amin(dim=2) if kind == "erosion" else (patches + s).amax(dim=2)
    torch.testing.assert_close(layer(x).flatten(2), expected)
    layer(x).sum().backward()  # the gradient reaches one structuring-element entry per output value
    assert layer.weight.grad.abs().sum() == pytest.approx(5 * 3 * 64)


def test_hit_matches_the_toolbox_settings_and_the_papers_parameter_count(indian_pines_models):
    spec = get_baseline("hit")
    settings = (spec.window, spec.pca_for("indian_pines"), spec.batch_size, spec.epochs, spec.lr)
    assert settings == (15, 0, 32, 100, 1e-4)
    # the toolbox's per-scene stage-1 widths: Indian Pines 400, Pavia University 208, Houston 288
    assert [embedding_width(b) for b in (200, 103, 144)] == [400, 208, 288]
    model = indian_pines_models["hit"]
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
    from conftest import make_tiny_scene

    from hsiclip import compare
    from hsiclip.data.splits import random_split

    spec = dataclasses.replace(get_baseline(name), **small)
    monkeypatch.setattr(compare, "get_baseline", lambda _: spec)
    scene = make_tiny_scene(bands=32)
    m = compare.train_baseline(name, scene, seed=0, fraction=0.2, epochs=3, progress=False)
    split = random_split(scene.labels, fraction=0.2, seed=0)
    assert sum(sum(row) for row in m["confusion"]) == len(split.test)  # scored on exactly our test pixels
    assert m["oa"] > 60, m["oa"]  # three separable spectra: well above chance (33%)
    assert m["trainable_params"] > 0 and m["flops"] > 0 and m["train_s"] > 0
