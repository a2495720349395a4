import json

import pytest

from hsiclip.config import builtin_configs, from_dict, load_config
from hsiclip.errors import ConfigError


def test_the_paper_recipe_of_a_scene_or_indian_pines_for_the_rest():
    assert {"paper_indian_pines", "paper_pavia_university"} <= set(builtin_configs())
    pu = load_config(None, "pavia_university")
    assert pu == load_config("paper_pavia_university") and pu.data.scene == "pavia_university"
    salinas = load_config(None, "salinas")  # no recipe of its own: Indian Pines' recipe, on Salinas
    assert salinas.data.scene == "salinas"
    assert salinas.replace(**{"data.scene": "indian_pines"}) == load_config("paper_indian_pines")
    assert load_config() == load_config("paper_indian_pines")


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
    ({"model": {"window": 3, "stem": "conv"}}, "above 4"),
    ({"model": {"members": 0}}, "members"),
    ({"model": {"dim": 64, "heads": 5}}, "divisible"),
    ({"train": {"schedule": "cosine", "epochs": 5, "warmup_epochs": 5}}, "warmup_epochs"),
])
def test_bad_values_fail_clearly(bad, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(bad)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="neither a file nor a built-in"):
        load_config("no_such_recipe")


@pytest.mark.parametrize("field, off, on", [
    ("train.tta", False, True), ("train.ema", 0.0, 0.999), ("train.label_smoothing", 0.0, 0.1),
    ("train.val_fraction", 0.0, 0.1), ("model.member_windows", [], [9, 7]), ("data.pca_whiten", True, False),
    ("text.context", 0, 4), ("model.name", "hsiclip", "resnet"),
])
def test_old_configs_load_with_removed_options_off_and_fail_with_them_on(field, off, on):
    section, name = field.split(".")
    old = {"name": "old", section: {name: off}}
    assert from_dict(old) == from_dict({"name": "old"})  # an old run folder's config.json still loads
    with pytest.raises(ConfigError, match=f"{field} = .*removed"):
        from_dict({"name": "old", section: {name: on}})


def test_mcls_clip_recipe_differs_only_in_loss_and_prompts():
    paper, mcls = load_config("paper_indian_pines"), load_config("mcls_clip_indian_pines")
    assert (mcls.loss.negatives, mcls.text.prompts) == ("all", "ensemble")
    assert mcls.model == paper.model and mcls.train == paper.train and mcls.data == paper.data


@pytest.mark.parametrize(("system", "recipe"), [("ours", "paper_indian_pines"), ("mcls_clip", "mcls_clip_indian_pines"),
                                                ("flagship", "flagship_indian_pines")])
def test_the_comparisons_rows_of_ours_train_the_shipped_recipes(system, recipe):
    from hsiclip.systems import get_system

    assert get_system(system).recipe("indian_pines") == load_config(recipe)  # the registry and the files agree
    assert get_system(system).recipe("indian_pines", seed=3, epochs=7, lr=2e-3) == load_config(recipe).replace(
        **{"train.seed": 3, "train.epochs": 7, "train.lr": 2e-3})
    with pytest.raises(ConfigError, match="unknown recipe field 'depthz'"):
        get_system(system).recipe("indian_pines", depthz=3)


def test_a_run_shortened_below_the_warm_up_keeps_the_recipes_share_of_it(caplog):
    from hsiclip.systems import get_system

    recipe = load_config("flagship_indian_pines")  # 5 warm-up epochs of 100
    flagship = get_system("flagship")
    with caplog.at_level("INFO", logger="hsiclip"):
        short = flagship.recipe("indian_pines", epochs=5)
    assert (short.train.epochs, short.train.warmup_epochs) == (5, 5 * recipe.train.warmup_epochs // 100) == (5, 0)
    assert "warm-up shortened from 5 to 0" in caplog.text
    assert flagship.recipe("indian_pines", epochs=40).train.warmup_epochs == recipe.train.warmup_epochs  # untouched
    with pytest.raises(ConfigError, match="warmup_epochs"):  # an explicit warm-up is the user's: not rewritten
        flagship.recipe("indian_pines", epochs=5, warmup_epochs=5)
