import json

import pytest

from hsiclip.config import builtin_configs, from_dict, load_config
from hsiclip.errors import ConfigError


def test_paper_recipes():
    assert {"paper_indian_pines", "paper_pavia_university"} <= set(builtin_configs())
    ip = load_config("paper_indian_pines")
    assert (ip.train.epochs, ip.train.batch_size, ip.train.lr) == (50, 32, 1e-3)
    assert (ip.loss.k_hard, ip.loss.k_semi, ip.data.train_fraction, ip.data.pca_components) == (4, 4, 0.1, 25)
    pu = load_config(None, "pavia_university")
    assert (pu.train.epochs, pu.train.batch_size, pu.data.scene) == (25, 128, "pavia_university")
    assert load_config(None, "salinas").data.scene == "salinas"


def test_overrides_and_round_trip(tmp_path):
    cfg = load_config().replace(**{"train.epochs": 3, "text.encoder": "bge-m3", "train.lr": None})
    assert cfg.train.epochs == 3 and cfg.text.encoder == "bge-m3" and cfg.train.lr == 1e-3
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert load_config(str(path)) == cfg


def test_toml_file(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('name = "mine"\n[train]\nepochs = 7\n[model]\nwindow = 9\n')
    cfg = load_config(str(p))
    assert (cfg.name, cfg.train.epochs, cfg.model.window) == ("mine", 7, 9)


@pytest.mark.parametrize("bad, match", [
    ({"train": {"epochz": 3}}, "epochz"),
    ({"optim": {}}, "optim"),
    ({"model": {"window": 14}}, "odd"),
    ({"model": {"window": 13}}, "multiple"),
    ({"loss": {"negatives": "some"}}, "negatives"),
    ({"text": {"prompts": "poem"}}, "prompts"),
    ({"data": {"train_fraction": 1.5}}, "train_fraction"),
    ({"model": {"window": 9, "stem": "conv", "members": 2, "member_windows": [9]}}, "one window per member"),
    ({"model": {"window": 9, "stem": "conv", "members": 2, "member_windows": [7, 5]}}, "largest"),
    ({"model": {"window": 9, "stem": "conv", "members": 2, "member_windows": [9, 3]}}, "above 4"),
    ({"model": {"window": 9, "members": 2, "member_windows": [9, 6]}}, "odd"),
    ({"model": {"window": 15, "members": 2, "member_windows": [15, 7]}}, "multiple of model.patch"),
])
def test_bad_values_fail_clearly(bad, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(bad)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="neither a file nor a built-in"):
        load_config("no_such_recipe")


def test_member_windows_read_back_as_a_tuple(tmp_path):
    p = tmp_path / "multi.toml"
    p.write_text('[model]\nstem = "conv"\nwindow = 13\nmembers = 2\nmember_windows = [13, 9]\n')
    cfg = load_config(str(p))
    assert cfg.model.member_windows == (13, 9)
    (tmp_path / "c.json").write_text(json.dumps(cfg.to_dict()))
    assert load_config(str(tmp_path / "c.json")) == cfg


def test_mcls_clip_recipe_differs_only_in_loss_and_prompts():
    paper, mcls = load_config("paper_indian_pines"), load_config("mcls_clip_indian_pines")
    assert (mcls.loss.negatives, mcls.text.prompts) == ("all", "ensemble")
    assert mcls.model == paper.model and mcls.train == paper.train and mcls.data == paper.data
