import math

import pytest
import torch

from hsiclip.config import ModelConfig, TrainConfig, load_config
from hsiclip.efficiency import count_parameters, describe_model, flops_per_sample
from hsiclip.models import create_vlm


def test_default_vision_encoder_matches_papers_174k():
    model = create_vlm(ModelConfig(), 25, torch.randn(16, 1024))
    n = count_parameters(model.visual)
    assert abs(n - 174_000) / 174_000 <= 0.05, n


def test_text_probe_matches_papers_65_6k_for_1024d_encoder():
    model = create_vlm(ModelConfig(projection="text"), 25, torch.randn(16, 1024))
    assert count_parameters(model.text_probe) == 65_600
    assert count_parameters(model, trainable=True) == count_parameters(model.visual) + 65_600 + 1


def test_forward_shapes_masking_and_normalisation():
    cfg = ModelConfig(mask_ratio=0.5, projection="text")
    model = create_vlm(cfg, 25, torch.randn(9, 384))
    x = torch.randn(4, 15, 15, 25)
    assert model.visual.tokens(x).shape == (4, 25, 64)
    assert model.visual.mask(model.visual.tokens(x)).shape == (4, 12, 64)  # round(25 * 0.5) = 12 kept
    model.train()
    logits = model(x)
    assert logits.shape == (4, 9)
    model.eval()
    z = model.encode_image(x)
    assert torch.allclose(z.norm(dim=1), torch.ones(4))
    assert torch.allclose(model(x), model(x))  # no masking at evaluation
    scale = model.logit_scale.exp()
    assert torch.allclose(model(x), scale * z @ model.encode_text().T, atol=1e-5)


def test_vision_side_projection():
    model = create_vlm(ModelConfig(projection="vision"), 25, torch.randn(16, 1024))
    assert count_parameters(model.visual_proj) == 64 * 1024 + 1024
    assert model(torch.randn(2, 15, 15, 25)).shape == (2, 16)


def test_text_features_are_a_frozen_buffer():
    model = create_vlm(ModelConfig(projection="text"), 25, torch.randn(5, 384))
    assert "text_features" in model.state_dict()
    assert all(p.data_ptr() != model.text_features.data_ptr() for p in model.parameters())


def test_flops_match_a_hand_count_of_the_papers_model():
    """Every matrix product of one forward pass, attention's included, 2 FLOPs per multiply-add."""
    cfg = ModelConfig(projection="vision")
    model = create_vlm(cfg, 25, torch.randn(16, 384))
    n, d, tokens = (cfg.window // cfg.patch) ** 2, cfg.dim, (cfg.window // cfg.patch) ** 2 + 1  # 25 patches + CLS
    patch = 2 * n * (cfg.patch**2 * 25) * d
    block = (2 * tokens * d * 3 * d  # qkv
             + 2 * 2 * tokens * tokens * d  # q k^T and attn v, over all heads
             + 2 * tokens * d * d  # output projection
             + 2 * 2 * tokens * d * cfg.mlp_dim)  # MLP
    head = 2 * d * cfg.embed_dim + 2 * cfg.embed_dim * 384 + 2 * 384 * 16  # head, visual_proj, prototypes
    assert flops_per_sample(model, torch.randn(15, 15, 25)) == patch + cfg.depth * block + head


def _layer_sum_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs of every Conv and Linear layer from its output shape (2 x outputs x inputs per output), via hooks."""
    total = 0

    def hook(module, _inputs, out):
        nonlocal total
        if isinstance(module, torch.nn.Linear):
            total += 2 * out.numel() * module.in_features
        else:
            total += 2 * out.numel() * module.in_channels // module.groups * math.prod(module.kernel_size)

    layers = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, layers)]
    with torch.no_grad():
        model.eval()(x.unsqueeze(0))
    for h in handles:
        h.remove()
    return total


def test_flops_of_a_cnn_equal_the_sum_over_its_layers():
    import hsiclip
    from hsiclip.models.baselines import get_baseline

    model = hsiclip.create_model("cnn2d", in_channels=200, num_classes=16)
    w = get_baseline("cnn2d").window
    x = torch.randn(w, w, 200)
    assert flops_per_sample(model, x) == _layer_sum_flops(model, x) > 0


def test_info_rows():
    cfg = load_config(None, "indian_pines").replace(**{"text.encoder": "bge-large-en-v1.5", "model.projection": "text"})
    rows, note = describe_model(cfg)
    d = {part: n for part, n, _ in rows}
    assert d["text probe (1024 -> 64)"] == 65_600
    assert d["frozen"] == 335_141_888
    assert d["total"] == d["trainable"] + d["frozen"]
    assert "0.07" in note  # the paper's "0.07% of the parameters are trained"


def test_training_and_inference_attention_paths_agree():
    model = create_vlm(ModelConfig(), 25, torch.randn(16, 384)).eval()
    x = torch.randn(3, 15, 15, 25)
    with torch.no_grad():
        fast = model(x)  # the fused kernel
    assert torch.allclose(model(x), fast, atol=1e-5)  # the plain-matmul path used while training


def test_flagship_recipe_stays_within_issue_6_budget():
    """At most 1M trainable parameters and 0.05 GFLOPs per sample, still a text-prototype classifier."""
    cfg = load_config("flagship_indian_pines")
    model = create_vlm(cfg.model, cfg.data.pca_components, torch.randn(16, 384))
    w = cfg.model.window
    assert count_parameters(model, trainable=True) <= 1_000_000
    assert flops_per_sample(model, torch.zeros(w, w, cfg.data.pca_components)) <= 5e7
    x = torch.randn(4, w, w, cfg.data.pca_components)
    out = model.train()(x)
    assert torch.isfinite(out).all()
    members = getattr(model, "members", [model])
    assert out.shape == (cfg.model.members, 4, 16) if cfg.model.members > 1 else out.shape == (4, 16)
    out.sum().backward()
    for member in members:
        side = member.cfg.window - 4  # one token per pixel of the conv stem's output, on the member's window
        assert member.cfg.window <= w and member.visual.num_patches == side**2
        assert member.visual.stem.conv3d[0].weight.grad is not None


def test_an_ensemble_trains_each_member_on_its_own_loss_and_averages_their_scores():
    import numpy as np
    import torch.nn.functional as F
    from conftest import make_tiny_scene

    from hsiclip.data.windows import WindowSampler
    from hsiclip.engine import train_model
    from hsiclip.models import HSIClipEnsemble

    cfg = ModelConfig(window=3, depth=1, heads=4, members=2)
    torch.manual_seed(0)
    model = create_vlm(cfg, 8, torch.randn(3, 384))
    assert isinstance(model, HSIClipEnsemble) and len(model.members) == 2
    single = create_vlm(ModelConfig(window=3, depth=1, heads=4), 8, torch.randn(3, 384))
    assert count_parameters(model, trainable=True) == 2 * count_parameters(single, trainable=True)
    x = torch.randn(5, 3, 3, 8)
    assert model.train()(x).shape == (2, 5, 3)  # one score matrix per member while training
    a, b = model.members
    assert not torch.allclose(a.eval()(x), b.eval()(x))  # independently initialised
    assert torch.allclose(model.eval()(x), (a(x) + b(x)) / 2)  # evaluation: the mean of the members' scores
    assert flops_per_sample(model, x[0]) == 2 * flops_per_sample(a, x[0])

    scene = make_tiny_scene(bands=8)
    sampler = WindowSampler(scene.cube, 3)
    index = np.flatnonzero(scene.labels.reshape(-1) > 0)[:40]
    before = [p.detach().clone() for p in model.parameters()]
    losses = []
    result = train_model(model, sampler, index, scene.targets[index], TrainConfig(epochs=1, batch_size=40),
                         lambda s, t: losses.append(s.shape) or F.cross_entropy(s, t), progress=False)
    assert losses == [(40, 3), (40, 3)]  # the loss saw each member's (B, C) scores, not their stack
    assert all(not torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True) if p.requires_grad)
    assert np.isfinite(result.history[0]["loss"])


@pytest.mark.parametrize("stem", ["conv", "patch"])
def test_an_ensembles_whole_tile_route_gives_the_scores_of_its_windows(stem):
    """Mapping runs each member's stem once per tile and gathers every window's tokens from the maps side by side."""
    cfg = ModelConfig(window=9, stem=stem, depth=1, heads=4, members=2)
    torch.manual_seed(0)
    model = create_vlm(cfg, 6, torch.randn(3, 384))
    model.train()(torch.randn(16, 9, 9, 6))  # BatchNorm's running statistics off 0/1 (the conv stem)
    model.eval()
    tile = torch.randn(12, 14, 6)
    smap, offsets = model.stem_map(tile), model.stem_offsets()
    assert smap.shape[-1] == model.stem_width == 2 * cfg.dim
    with torch.no_grad():
        for r, c in ((0, 0), (3, 5)):
            tokens = smap[r + offsets[:, 0], c + offsets[:, 1]].unsqueeze(0)
            torch.testing.assert_close(model.classify_stem_tokens(tokens), model(tile[r : r + 9, c : c + 9][None]),
                                       rtol=1e-5, atol=1e-5)
