"""Inference-only rewrites: the stem run once per tile, heads-last attention, the compiled model."""

import numpy as np
import pytest
import torch

from hsiclip.config import ModelConfig
from hsiclip.models import create_vlm
from hsiclip.models.inference import FixedBatch, for_inference, heads_last

STEMS = [ModelConfig(window=9), ModelConfig(window=9, stem="conv", depth=2, heads=4, mlp_dim=32)]


def _model(cfg: ModelConfig, bands: int = 6) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_vlm(cfg, bands, torch.randn(5, 12))
    model.train()(torch.randn(32, cfg.window, cfg.window, bands))  # moves BatchNorm's running statistics off 0/1
    return model.eval()


@pytest.mark.parametrize("cfg", STEMS, ids=["patch", "conv"])
def test_stem_map_gives_every_windows_tokens(cfg):
    model, w = _model(cfg), cfg.window
    tile = torch.randn(20, 17, 6)
    smap, offsets = model.visual.stem_map(tile), model.visual.stem_offsets()  # (H', W', D), (N, 2)
    assert offsets.shape == (model.visual.num_patches, 2)
    for y, x in [(0, 0), (3, 5), (20 - w, 17 - w)]:  # windows with top-left (y, x)
        expected = model.visual.stem_tokens(tile[y : y + w, x : x + w].unsqueeze(0))[0]  # (N, D)
        torch.testing.assert_close(smap[y + offsets[:, 0], x + offsets[:, 1]], expected, rtol=1e-5, atol=1e-5)
    window = tile[:w, :w].unsqueeze(0)
    torch.testing.assert_close(model.classify_stem_tokens(model.visual.stem_tokens(window)), model(window))


@pytest.mark.parametrize("cfg", STEMS, ids=["16 heads of 4", "4 heads of 16"])
def test_heads_last_attention_is_the_same_function(cfg):
    model = _model(cfg)
    fast = heads_last(model)
    assert fast is not model and type(fast.visual.blocks[0].attn).__name__ == "HeadsLastAttention"
    x = torch.randn(7, cfg.window, cfg.window, 6)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-4)
    assert type(model.visual.blocks[0].attn).__name__ == "Attention"  # the trained model is left as it was


def test_fixed_batch_pads_and_chunks():
    seen = []

    class Record(torch.nn.Module):
        def forward(self, x):
            seen.append(len(x))
            return x.sum(dim=(1, 2))

    net = FixedBatch(Record(), 4)
    x = torch.arange(10 * 6, dtype=torch.float32).view(10, 2, 3)
    np.testing.assert_allclose(net(x).numpy(), x.sum(dim=(1, 2)).numpy())
    assert seen == [4, 4, 4]  # 10 samples: two full batches and one padded from 2 to 4


def test_without_compile_the_model_is_returned_as_it_is_in_eval_mode():
    model = _model(STEMS[0]).train()
    assert for_inference(model, torch.randn(9, 9, 6), 4, compile=False) is model and not model.training


def test_a_failed_compile_falls_back_to_the_eager_model_with_a_warning(monkeypatch):
    model = _model(STEMS[0])

    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match=r"torch.compile failed .*no C\+\+ compiler"):
        assert for_inference(model, torch.randn(9, 9, 6), 4) is model


@pytest.mark.slow
def test_compiled_model_matches_the_eager_one():
    """TorchInductor compiles the heads-last model (about 10 s; needs a C++ compiler, which CI has)."""
    model = _model(STEMS[0])
    x = torch.randn(5, 9, 9, 6)
    fast = for_inference(model, x[0], 4)
    assert isinstance(fast, FixedBatch)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-4)
