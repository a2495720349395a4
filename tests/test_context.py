"""Learnable prompt context (CoOp): prototypes through the frozen encoder, trained once per epoch, kept in the run."""

from __future__ import annotations

import pytest
import torch

from hsiclip.cli import main
from hsiclip.config import load_config
from hsiclip.efficiency import count_parameters, describe_model
from hsiclip.errors import ConfigError
from hsiclip.models import create_model
from hsiclip.run import evaluate_run, load_run, train_run
from hsiclip.text.context import PromptContext
from hsiclip.text.encoders import TextEncoder

TEXTS = [["Rows of young corn over bare soil."], ["Dark asphalt roads.", "A paved parking lot."], ["Open water."]]


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return TextEncoder("minilm")


def test_context_set_to_word_embeddings_reproduces_the_encoder_on_the_written_words(minilm):
    # the context vectors placed where the tokens of "hyperspectral image of" would be: the prototypes must be the
    # encoder's own embeddings of the prompts with those words written in front, averaged per class
    words = minilm.model.tokenizer("hyperspectral image of", add_special_tokens=False)["input_ids"]
    table = minilm.model[0].auto_model.get_input_embeddings()
    context = PromptContext(len(words), table.embedding_dim).bind(minilm, TEXTS)
    with torch.no_grad():
        context.ctx.copy_(table(torch.tensor(words)))
        got = context()
    expected = []
    for group in TEXTS:
        emb = torch.from_numpy(minilm.encode(["hyperspectral image of " + t for t in group])).mean(0)
        expected.append(emb / emb.norm())
    torch.testing.assert_close(got, torch.stack(expected), atol=2e-5, rtol=0)
    assert got.shape == (3, 384)


def test_prototypes_are_differentiable_in_the_context_only(minilm):
    context = PromptContext(4, 384, seed=1).bind(minilm, TEXTS)
    context()[0, 0].backward()
    assert context.ctx.grad is not None and context.ctx.grad.abs().sum() > 0
    assert [n for n, _ in context.named_parameters()] == ["ctx"]  # the encoder is neither trained nor saved
    assert list(context.state_dict()) == ["ctx"]
    torch.testing.assert_close(PromptContext(4, 384, seed=1).ctx, context.ctx.detach())  # its own seeded draw


def test_an_unbound_context_says_so():
    with pytest.raises(RuntimeError, match="not bound"):
        PromptContext(2, 8)()


def test_a_run_learns_its_context_and_reloads_without_the_encoder(tiny_scene, tiny_prompts, text_cache, tmp_path):
    cfg = load_config("flagship_indian_pines").replace(**{
        "data.scene": "tiny", "data.pca_components": 5, "model.window": 7, "train.epochs": 3, "text.context": 4,
        "train.warmup_epochs": 1, "data.train_fraction": 0.2, "train.val_fraction": 0.3})
    metrics = train_run(cfg, tiny_scene, tmp_path / "run", cache_dir=text_cache, prompt_file=tiny_prompts,
                        progress=False)
    run = load_run(tmp_path / "run")
    ctx = run.model.prompt_context.ctx
    assert not torch.equal(ctx, PromptContext(4, 384, seed=cfg.train.seed).ctx)  # it moved from its initial draw
    # the stored prototypes are those of the stored context (the kept epoch's), shared by both members
    fresh = PromptContext(4, 384).bind(TextEncoder("minilm"), [[t] for t in _descriptions(tiny_prompts)])
    with torch.no_grad():
        fresh.ctx.copy_(ctx)
        expected = fresh()
    for member in run.model.members:
        torch.testing.assert_close(member.text_features, expected, atol=1e-5, rtol=0)
    again = evaluate_run(run, tiny_scene, progress=False)
    assert all(again[k] == metrics[k] for k in ("oa", "kappa", "confusion"))
    plain = create_model(cfg.model, 5, torch.zeros(3, 384))  # the same ensemble without a context
    assert count_parameters(run.model, trainable=True) - count_parameters(plain, trainable=True) == 4 * 384


def _descriptions(path) -> list[str]:
    from hsiclip.text.prompts import load_prompt_set

    return [p.descriptive for p in load_prompt_set(path)]


def test_info_counts_the_context(capsys):
    cfg = load_config("flagship_indian_pines")
    rows = dict((p, n) for p, n, _ in describe_model(cfg)[0])
    with_ctx = dict((p, n) for p, n, _ in describe_model(cfg.replace(**{"text.context": 16}))[0])
    assert with_ctx["trainable"] - rows["trainable"] == 16 * 384
    assert with_ctx["prompt context (CoOp, 16 x 384, shared)"] == 16 * 384
    assert main(["info", "--config", "flagship_indian_pines", "--context", "16"]) == 0
    assert f"{with_ctx['trainable']:,}" in capsys.readouterr().out


def test_the_command_line_trains_a_context(tiny_scene, tiny_prompts, text_cache, tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.setenv("HSICLIP_CACHE_DIR", str(text_cache))
    np.save(tmp_path / "cube.npy", tiny_scene.cube)
    np.save(tmp_path / "labels.npy", tiny_scene.labels)
    assert main(["train", "--cube", str(tmp_path / "cube.npy"), "--labels", str(tmp_path / "labels.npy"),
                 "--classes", str(tiny_prompts), "--epochs", "1", "--context", "2", "--out", str(tmp_path / "run"),
                 "--quiet", "--no-map"]) == 0
    run = load_run(tmp_path / "run")
    assert run.cfg.text.context == 2 and run.model.prompt_context.ctx.shape == (2, 384)


@pytest.mark.parametrize("over, match", [
    ({"text.context": -1}, "text.context must be >= 0"),
    ({"text.context": 4, "train.ema": 0.99}, "does not combine with train.ema"),
])
def test_bad_context_configs_fail_clearly(over, match):
    with pytest.raises(ConfigError, match=match):
        load_config("flagship_indian_pines").replace(**over)
