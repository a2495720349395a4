"""Zero-shot classes and few labels on tiny scenes whose class texts do, or do not, describe the spectra."""

from pathlib import Path

import numpy as np
import pytest
from conftest import STUB_DIM, StubEncoder

import hsiclip
from hsiclip.data.scenes import Scene
from hsiclip.data.splits import Split
from hsiclip.errors import ConfigError
from hsiclip.zeroshot import class_indices, few_shot_split, zero_shot_metrics

# five words in distinct buckets of the stub encoder; each class is described by two of them, so every word of the
# unseen classes (5 and 6) also describes some seen class: the text composes what the spectra compose
WORDS = ("alpha", "bravo", "charlie", "echo", "foxtrot")
PAIRS = ((0, 1), (0, 2), (1, 3), (2, 4), (3, 4), (1, 4), (0, 3), (2, 3))
UNRELATED = ("golf", "hotel", "india", "kilo", "lima", "mike", "november", "oscar")  # other buckets, one per class
UNSEEN = ["class5", "class6"]


def described_scene(folder: Path, texts_match: bool, h: int = 32, w: int = 32, bands: int = 30) -> Scene:
    """Eight classes in stripes whose mean spectra are one linear map of their descriptions' stub embeddings; the
    class file holds those descriptions (`texts_match`) or one unrelated word per class."""
    rng = np.random.default_rng(0)
    names = tuple(f"class{i + 1}" for i in range(len(PAIRS)))
    described = [f"{WORDS[a]} {WORDS[b]}" for a, b in PAIRS]
    labels = np.zeros((h, w), np.int64)
    labels[1:-1, 1:-1] = 1 + (np.arange(w - 2) * len(PAIRS) // (w - 2))[None, :]
    mix = rng.normal(size=(bands, STUB_DIM))
    means = np.vstack([np.zeros(bands), StubEncoder().encode(described) @ mix.T])
    cube = (means[labels] + 0.1 * rng.standard_normal((h, w, bands))).astype(np.float32)
    texts = described if texts_match else list(UNRELATED)
    classes = folder / f"classes_{texts_match}.toml"
    folder.mkdir(parents=True, exist_ok=True)
    classes.write_text("".join(f'[[classes]]\nlabel = {i + 1}\nname = "{n}"\ndescriptive = "{t}"\n'
                               for i, (n, t) in enumerate(zip(names, texts, strict=True))))
    scene = Scene("described", cube, labels, names, "synthetic")
    scene.prompts = classes
    return scene


@pytest.fixture
def zs_recipe(tmp_path):
    p = tmp_path / "zs.toml"
    p.write_text('name = "tiny_zs"\n[data]\npca_components = 8\n[model]\nwindow = 3\npatch = 1\ndepth = 2\n'
                 'heads = 4\n[text]\nencoder = "stub"\n[train]\nepochs = 8\nbatch_size = 16\n')
    return p


def _zero_shot(scene, recipe, cache, seed):
    return hsiclip.train(scene, str(recipe), seed=seed, fraction=0.3, unseen=UNSEEN, progress=False,
                         cache_dir=cache)


def test_unseen_classes_are_recognised_from_their_descriptions_when_the_text_describes_them(tmp_path, zs_recipe,
                                                                                         text_cache):
    scene = described_scene(tmp_path, texts_match=True)
    runs = [_zero_shot(scene, zs_recipe, text_cache, seed) for seed in (0, 1)]
    for run in runs:  # no unseen pixel trained; the saved model scores every class
        assert not np.isin(scene.targets[run.split.train], class_indices(UNSEEN, scene.class_names)).any()
        assert run.model.text_features.shape[0] == 8 and run.record["unseen"] == UNSEEN
    text_h = np.mean([r.record["zero_shot"]["text"]["h"] for r in runs])
    random_h = np.mean([r.record["zero_shot"]["random"]["h"] for r in runs])
    text_unseen = np.mean([r.record["zero_shot"]["text"]["unseen"] for r in runs])
    assert text_unseen > 70 and text_h > random_h + 30, (text_h, random_h, text_unseen)


def test_unrelated_descriptions_do_not_beat_random_prototypes(tmp_path, zs_recipe, text_cache):
    scene = described_scene(tmp_path, texts_match=False)
    runs = [_zero_shot(scene, zs_recipe, text_cache, seed) for seed in (0, 1)]
    text_h = np.mean([r.record["zero_shot"]["text"]["h"] for r in runs])
    random_h = np.mean([r.record["zero_shot"]["random"]["h"] for r in runs])
    assert text_h <= random_h + 10, (text_h, random_h)


def test_a_zero_shot_run_reloads_and_evaluates_to_its_metrics(tmp_path, zs_recipe, text_cache):
    scene = described_scene(tmp_path, texts_match=True)
    run = _zero_shot(scene, zs_recipe, text_cache, 0)
    run.save(tmp_path / "run")
    again = hsiclip.load_run(tmp_path / "run")
    assert again.evaluate(scene)["oa"] == run.metrics["oa"]  # every class's prototype was saved
    hidden = class_indices(UNSEEN, scene.class_names)
    zs = zero_shot_metrics(again.model, again.sampler(scene.cube), again.split.test, scene.targets, hidden,
                           again.model.text_features.clone(), 0, again.eval_batch_size)
    assert zs["text"] == run.record["zero_shot"]["text"] and zs["random"] == run.record["zero_shot"]["random"]


def test_few_labels_keep_n_pixels_per_class_and_one_test_set(tmp_path, zs_recipe, text_cache):
    scene = described_scene(tmp_path, texts_match=True)
    runs = {n: hsiclip.train(scene, str(zs_recipe), seed=2, per_class=n, progress=False, cache_dir=text_cache)
            for n in (1, 3)}
    for n, run in runs.items():
        counts = np.bincount(scene.targets[run.split.train], minlength=8)
        assert counts.tolist() == [n] * 8 and run.record["train_count"] == n
    np.testing.assert_array_equal(runs[1].split.test, runs[3].split.test)
    rand = hsiclip.train(scene, str(zs_recipe), seed=2, per_class=3, prototypes="random", progress=False,
                         cache_dir=text_cache)
    assert rand.record["prototypes"] == "random"
    assert not np.allclose(rand.model.text_features.numpy(), runs[3].model.text_features.numpy())


def test_few_shot_split_takes_what_a_small_class_has():
    labels = np.array([[1, 1, 1, 2]])
    split = few_shot_split(Split(np.arange(4), np.arange(0)), labels, 2, seed=0)
    assert sorted(labels.reshape(-1)[split.train].tolist()) == [1, 1, 2]


def test_zero_shot_requests_that_cannot_work_are_refused(tmp_path, zs_recipe, text_cache):
    scene = described_scene(tmp_path, texts_match=True)
    with pytest.raises(ConfigError, match="without text prototypes"):
        hsiclip.train(scene, "rf", unseen=["class1"], progress=False)
    with pytest.raises(ConfigError, match="unknown class 'Oats'"):
        class_indices(["Oats"], scene.class_names)
    with pytest.raises(ConfigError, match="at least two classes must stay seen"):
        class_indices([str(i) for i in range(1, 8)], scene.class_names)
    with pytest.raises(ConfigError, match="unknown prototypes"):
        hsiclip.train(scene, str(zs_recipe), prototypes="learned", progress=False, cache_dir=text_cache)


def test_the_cli_trains_a_zero_shot_run_and_prints_both_controls(tmp_path, zs_recipe, text_cache, monkeypatch,
                                                                   capsys):
    from hsiclip.cli import main

    scene = described_scene(tmp_path, texts_match=True)
    np.save(tmp_path / "cube.npy", scene.cube)
    np.save(tmp_path / "labels.npy", scene.labels)
    monkeypatch.setenv("HSICLIP_CACHE_DIR", str(text_cache))
    assert main(["train", "--cube", str(tmp_path / "cube.npy"), "--labels", str(tmp_path / "labels.npy"),
                 "--classes", str(scene.prompts), "--config", str(zs_recipe), "--unseen", "class5,6",
                 "--train-fraction", "0.3", "--out", str(tmp_path / "run"), "--quiet", "--no-map"]) == 0
    out = capsys.readouterr().out
    assert "class5, class6 unseen in training" in out and "random" in out and "chance: 12.50" in out
    assert hsiclip.load_run(tmp_path / "run").record["unseen"] == UNSEEN


def test_reproduce_zero_shot_and_few_shot_end_to_end(tmp_path, text_cache, small_recipes, monkeypatch):
    """Both experiments on the described scene (the stub encoder, short runs): tables, csv and figures written, every
    run recorded once, and a second call trains nothing."""
    from hsiclip.experiments import reproduce, runner, zeroshot

    monkeypatch.setattr(zeroshot, "ENCODERS", ())  # the recipe's encoder (the stub) only
    scene = described_scene(tmp_path / "scene", texts_match=True, h=40, w=40)
    kw = {"out_dir": tmp_path / "results", "work_dir": tmp_path / "work", "compare_dir": tmp_path / "compare",
          "command": "hsiclip reproduce ...", "cache_dir": text_cache, "progress": False, "log": lambda m: None,
          "executor": "local"}
    paths = reproduce.reproduce("zero-shot", scene, [0], **kw)
    assert [p.suffix for p in paths] == [".md", ".csv", ".png"] and all(p.stat().st_size > 500 for p in paths)
    md = paths[0].read_text()
    assert "| paper | stub | descriptive | text | 4 |" in md and "| leakfree-w15 | stub | label | random | 4 |" in md
    assert md.count("**the text carries") + md.count("**no evidence") == 4  # a finding per (protocol, variant)
    few = reproduce.reproduce("few-shot", scene, [0], epochs={"ssftt": 1, "vision_only": 2}, **kw)
    text = few[0].read_text()
    assert "Reduced budget, not comparable" in text and "| paper | ours, random prototypes | 1 | 1 |" in text
    assert len(list((tmp_path / "work").rglob("seed0*.json"))) == 16 + 32
    monkeypatch.setattr(runner, "execute", lambda *a, **k: pytest.fail("nothing should be trained again"))
    reproduce.reproduce("zero-shot", scene, [0], **kw)
