"""`hsiclip reproduce`: table experiments cached per (config, seed), findings checked, figure experiments drawn."""

import csv

import numpy as np
import pytest
import torch
from conftest import make_tiny_scene

from hsiclip import compare, figures, reproduce, run
from hsiclip.cli import main
from hsiclip.reproduce import EXPERIMENTS, ORDER, Finding, Row, check_findings, variant_dir


@pytest.fixture
def short_recipe(monkeypatch):
    """Our recipe at 6 epochs and 9x9 windows, so the tiny scene trains in seconds."""
    original = compare.vlm_config

    def short(name, scene):
        return original(name, scene).replace(**{"train.epochs": 6, "model.window": 9})

    monkeypatch.setattr(compare, "vlm_config", short)
    monkeypatch.setattr(reproduce, "vlm_config", short)


def _kw(tmp_path, tiny_prompts, text_cache):
    return {"out_dir": tmp_path / "results", "work_dir": tmp_path / "work", "compare_dir": tmp_path / "compare",
            "command": "hsiclip reproduce ...", "cache_dir": text_cache, "prompt_file": tiny_prompts,
            "progress": False, "log": lambda m: None}


def test_every_experiment_of_the_issue_is_registered():
    assert ORDER == ["loss-ablation", "train-fraction", "batch-size", "prompts", "text-encoders", "vision-only",
                     "more-baselines", "embeddings", "loss-landscape", "maps"]
    rows = EXPERIMENTS.get("batch-size").rows("indian_pines")
    assert [r.x for r in rows] == [4, 8, 16, 32, 64, 128]
    assert [r.overrides for r in rows if r.x == 32] == [()]  # the recipe's own batch is the comparison's `ours`
    assert {r.system for r in EXPERIMENTS.get("train-fraction").rows("indian_pines")} == {"ours", "dctn"}


def test_table_experiment_end_to_end_resumes_without_training(tmp_path, tiny_prompts, text_cache, short_recipe,
                                                              monkeypatch):
    scene = make_tiny_scene()
    kw = _kw(tmp_path, tiny_prompts, text_cache)
    paths = reproduce.reproduce("loss-ablation", scene, [0, 1], **kw)
    assert [p.name for p in paths] == ["loss-ablation_tiny.md", "loss-ablation_tiny.csv", "loss-ablation_tiny.png"]
    with open(paths[1]) as f:
        rows = list(csv.DictReader(f))
    assert [r["paper_oa"] for r in rows] == ["90.1600", "93.4400", "94.0300"]
    assert all(r["seeds"] == "0 1" and r["status"] == "" and 30 < float(r["oa_mean"]) <= 100 for r in rows)
    assert rows[0]["changes"] == "loss.negatives=semi" and rows[2]["changes"] == ""
    # the unchanged recipe is the comparison's `ours` record; the variants are run folders keyed by their config
    assert (tmp_path / "compare" / "tiny" / "paper" / "ours" / "seed1-ep6.json").is_file()
    variants = sorted(p.name for p in (tmp_path / "work" / "tiny" / "vlm" / "ours").iterdir())
    assert variants == ["loss.negatives=hard", "loss.negatives=semi"]
    assert all((tmp_path / "work" / "tiny" / "vlm" / "ours" / v / "seed1" / "metrics.json").is_file() for v in variants)
    md = paths[0].read_text()
    assert "Paper: full > without semi-hard > without hard." in md and "Command: `hsiclip reproduce ...`" in md

    def boom(*a, **k):
        raise AssertionError("nothing should be trained again")

    import shutil

    for v in variants:  # the small JSON records alone (as committed) are enough: the run folders may be gone
        for seed in (0, 1):
            shutil.rmtree(tmp_path / "work" / "tiny" / "vlm" / "ours" / v / f"seed{seed}")
    with monkeypatch.context() as m:
        m.setattr(run, "train_run", boom)
        m.setattr(compare, "_train_vlm", boom)
        again = reproduce.reproduce("loss-ablation", scene, [0, 1], **kw)
    with open(again[1]) as f:
        assert list(csv.DictReader(f)) == rows

    # encoders missing on this machine are rows marked as such, not failures; skipped systems stay in the table
    paths = reproduce.reproduce("text-encoders", scene, [0], **kw)
    with open(paths[1]) as f:
        status = {r["label"].split()[0]: r["status"] for r in csv.DictReader(f)}
    assert status["minilm"] == "" and status["bge-large-en-v1.5"] == "not available here"


def test_variant_folders_are_named_by_their_changes(tmp_path):
    row = Row("x", "ours", (("text.encoder", "BAAI/bge-m3"), ("train.batch_size", 8)), fraction=0.2)
    assert variant_dir(tmp_path, "ip", row) == tmp_path / "ip" / "vlm" / "ours" / (
        "text.encoder=BAAI_bge-m3,train.batch_size=8-frac0.2")
    assert variant_dir(tmp_path, "ip", Row("y")).name == "recipe"


def test_findings_confirmed_reversed_or_not_checkable():
    def row(label, oa, seeds="0"):
        return {"label": label, "oa_mean": oa, "seeds": seeds}

    table = [row("a", 95.0), row("b", 94.0), row("c", 96.0), row("d", float("nan"), "")]
    lines = check_findings(table, [Finding("a > b", "order", ("a", "b")),
                                   Finding("a > b > c", "order", ("a", "b", "c")),
                                   Finding("c best", "best", ("c", "a", "b")), Finding("a > d", "order", ("a", "d"))])
    assert lines[0].startswith("- Paper: a > b. Confirmed here (a 95.00, b 94.00)")
    assert "**Not confirmed** here (a 95.00, b 94.00, c 96.00)" in lines[1]
    assert "Confirmed" in lines[2] and "Not checkable" in lines[3]


def test_filter_normalised_directions_and_the_loss_surface():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    params = [p for p in model.parameters()]
    d = figures.filter_normalized_direction(params, torch.Generator().manual_seed(0))
    for p, u in zip(params, d, strict=True):
        if p.dim() == 1:
            assert not u.any()  # biases are not perturbed
        else:  # each filter (row) has the weight's own norm
            torch.testing.assert_close(u.norm(dim=1), p.detach().norm(dim=1))
    x, y = torch.randn(50, 4), torch.randint(0, 3, (50,))
    before = [p.detach().clone() for p in params]
    grid = np.linspace(-1, 1, 5)
    surface = figures.loss_surface(model, torch.nn.functional.cross_entropy, x, y, grid)
    assert surface.shape == (5, 5)
    assert surface[2, 2] == pytest.approx(float(torch.nn.functional.cross_entropy(model(x), y).detach()), rel=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # weights restored
    bowl = np.add.outer(grid**2, grid**2)
    assert figures.basin(bowl, 0.3) == pytest.approx(5 / 25)  # the centre and its 4 neighbours (loss 0.25)


def test_figure_experiments_on_a_tiny_scene(tmp_path, tiny_prompts, text_cache, short_recipe, monkeypatch):
    monkeypatch.setattr(figures, "LANDSCAPE_GRID", 5)
    monkeypatch.setattr(figures, "UMAP_POINTS", 200)
    scene = make_tiny_scene()
    kw = _kw(tmp_path, tiny_prompts, text_cache)
    heavy = [s for s in figures.MAP_SYSTEMS if s not in ("ours", "mcls_clip", "ssftt")]
    emb = reproduce.reproduce("embeddings", scene, [0, 1], **kw)
    text = emb[0].read_text()
    assert "| ours (paper recipe) | 0 1 |" in text and "| M-CLS CLIP | 0 1 |" in text
    assert emb[2].stat().st_size > 20_000
    land = reproduce.reproduce("loss-landscape", scene, [0], **kw)
    with open(land[1]) as f:
        cells = list(csv.DictReader(f))
    assert len(cells) == 2 * 25 and {c["system"] for c in cells} == {"ours", "mcls_clip"}
    assert "basin share" in land[0].read_text().lower()
    maps = reproduce.reproduce("maps", scene, [0], skip=heavy, epochs={"ssftt": 3}, **kw)
    with open(maps[1]) as f:
        rows = {r["system"]: r for r in csv.DictReader(f)}
    assert rows["ssftt"]["status"] == "done" and rows["dctn"]["status"] == "not run"
    # the map's OA is the one the comparison recorded (the VLM rows are re-predicted from their weights)
    recs = compare.run_comparison(scene, ["ours", "ssftt"], [0], epochs={"ssftt": 3}, work_dir=tmp_path / "compare",
                                  train=False, progress=False, log=lambda m: None)
    for r in recs:
        assert float(rows[r["model"]]["oa"]) == pytest.approx(r["oa"], abs=0.01)


def test_cli_lists_and_rejects_unknown_experiments(capsys):
    assert main(["reproduce", "--list"]) == 0
    assert "loss-landscape" in capsys.readouterr().out
    assert main(["reproduce", "no-such-table"]) == 1
    assert "unknown experiment 'no-such-table'" in capsys.readouterr().err
