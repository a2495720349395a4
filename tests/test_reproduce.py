"""`hsiclip reproduce`: table experiments cached per (config, seed), findings checked, figure experiments drawn."""

import csv
import shutil

import numpy as np
import pytest
import torch

from hsiclip import pipeline
from hsiclip.cli import main
from hsiclip.experiments import figures, reproduce
from hsiclip.experiments.catalog import EXPERIMENTS, Finding, Row
from hsiclip.experiments.compare import resolve_epochs, run_comparison
from hsiclip.experiments.reproduce import check_findings, experiment_names, run_rows, variant_dir
from hsiclip.records import RecordStore
from hsiclip.systems import get_system
from hsiclip.text.encoders import ENCODERS, encoder_available


def _kw(tmp_path, text_cache):
    return {"out_dir": tmp_path / "results", "work_dir": tmp_path / "work", "compare_dir": tmp_path / "compare",
            "command": "hsiclip reproduce ...", "cache_dir": text_cache, "progress": False, "log": lambda m: None}


def _boom(*a, **k):
    raise AssertionError("nothing should be trained again")


def test_every_experiment_is_listed_once_tables_first():
    names = experiment_names()
    assert sorted(names) == EXPERIMENTS.names()
    figure = [EXPERIMENTS.get(n).figure is not None for n in names]
    assert figure == sorted(figure) and any(figure) and not all(figure)  # the tables, then the figures


@pytest.mark.parametrize("name", [n for n in EXPERIMENTS.names() if EXPERIMENTS.get(n).figure is None])
def test_every_table_row_resolves_and_every_finding_names_its_rows(name):
    """A typo in a row's system or override, or in a finding's row label, fails here rather than mid-run."""
    exp = EXPERIMENTS.get(name)
    rows = exp.rows("indian_pines")
    labels = [r.label for r in rows]
    assert rows and len(set(labels)) == len(labels)
    for row in rows:
        system = get_system(row.system)
        recipe = system.recipe("indian_pines", **dict(row.overrides))  # every override names a recipe field
        for key, value in row.overrides:
            assert system.flat_recipe(recipe)[key] == value
        assert 0 < row.fraction < 1
    for finding in exp.findings:
        assert finding.kind in ("order", "best") and set(finding.labels) <= set(labels), finding


def test_a_row_at_the_recipes_own_setting_is_the_comparisons_record():
    """The batch-size row at the recipe's batch size changes nothing, so it reuses `hsiclip compare`'s `ours`."""
    own = get_system("ours").recipe("indian_pines").train.batch_size
    rows = EXPERIMENTS.get("batch-size").rows("indian_pines")
    assert [r.overrides for r in rows if r.x == own] == [()]
    assert all(r.overrides == (("train.batch_size", r.x),) for r in rows if r.x != own)


def test_table_experiment_end_to_end_resumes_without_training(tmp_path, tiny_scene, text_cache, small_recipes,
                                                              monkeypatch):
    kw = _kw(tmp_path, text_cache)
    paths = reproduce.reproduce("loss-ablation", tiny_scene, [0, 1], **kw)
    assert [p.name for p in paths] == ["loss-ablation_tiny.md", "loss-ablation_tiny.csv", "loss-ablation_tiny.png"]
    with open(paths[1]) as f:
        rows = list(csv.DictReader(f))
    table = EXPERIMENTS.get("loss-ablation").rows("tiny")
    assert [r["label"] for r in rows] == [r.label for r in table]
    assert [float(r["paper_oa"]) for r in rows] == [r.paper_oa for r in table]  # the paper's, apart from ours
    assert all(r["seeds"] == "0 1" and r["status"] == "" and 30 < float(r["oa_mean"]) <= 100 for r in rows)
    assert [r["changes"] for r in rows] == [",".join(f"{k}={v}" for k, v in r.overrides) for r in table]
    # the unchanged recipe is the comparison's `ours` record; the variants are run folders keyed by their changes
    epochs = resolve_epochs("ours", "tiny")
    assert RecordStore(tmp_path / "compare").stem("tiny", "paper", 0.1, "ours", 1, epochs).with_suffix(
        ".json").is_file()
    variants = [variant_dir(tmp_path / "work", "tiny", r) for r in table if r.overrides]
    assert sorted(p.name for p in (tmp_path / "work" / "tiny" / "vlm" / "ours").iterdir()) == sorted(
        p.name for p in variants) and len(variants) == 2
    assert all((v / f"seed{s}" / "metrics.json").is_file() and (v / f"seed{s}.json").is_file()
               for v in variants for s in (0, 1))
    md = paths[0].read_text()
    claim = EXPERIMENTS.get("loss-ablation").findings[0].claim
    assert f"Paper: {claim}." in md and "Command: `hsiclip reproduce ...`" in md

    for v in variants:  # the small JSON records alone (as committed) are enough: the run folders may be gone
        for seed in (0, 1):
            shutil.rmtree(v / f"seed{seed}")
    with monkeypatch.context() as m:
        m.setattr(pipeline, "train", _boom)
        again = reproduce.reproduce("loss-ablation", tiny_scene, [0, 1], **kw)
        with open(again[1]) as f:
            assert list(csv.DictReader(f)) == rows

        # encoders missing on this machine are rows marked as such, not failures; the recipe's own encoder is
        # the comparison's `ours` record again
        paths = reproduce.reproduce("text-encoders", tiny_scene, [0], train_missing=False, **kw)
    own = get_system("ours").recipe("tiny").text.encoder
    with open(paths[1]) as f:
        status = {r["label"].split()[0]: r["status"] for r in csv.DictReader(f)}
    assert set(status) == set(ENCODERS.names()) and status.pop(own) == ""
    assert status == {n: "not run yet" if encoder_available(n) else "not available here" for n in status}


def test_a_row_whose_encoder_is_missing_is_marked_not_failed(tmp_path, tiny_scene, text_cache, small_recipes):
    missing = next((n for n in ENCODERS.names() if not encoder_available(n)), None)
    if missing is None:
        pytest.skip("every registered encoder is available here")
    row = Row("missing encoder", "ours", (("text.encoder", missing),))
    out = run_rows(tiny_scene, [row], [0], work_dir=tmp_path / "work", compare_dir=tmp_path / "compare",
                   cache_dir=text_cache, progress=False, log=lambda m: None)
    assert out[0]["records"] == [] and out[0]["status"] == "not available here"
    assert not (variant_dir(tmp_path / "work", "tiny", row) / "seed0.json").exists()


def test_variant_folders_are_named_by_their_changes(tmp_path):
    row = Row("x", "ours", (("text.encoder", "BAAI/bge-m3"), ("train.batch_size", 8)), fraction=0.2)
    assert variant_dir(tmp_path, "ip", row) == tmp_path / "ip" / "vlm" / "ours" / (
        "text.encoder=BAAI_bge-m3,train.batch_size=8-frac0.2")
    assert variant_dir(tmp_path, "ip", Row("y")).name == "recipe"
    assert variant_dir(tmp_path, "ip", Row("z", fraction=0.3)).name == "recipe-frac0.3"


def test_findings_confirmed_reversed_or_not_checkable():
    def row(label, oa, seeds="0"):
        return {"label": label, "oa_mean": oa, "seeds": seeds}

    table = [row("a", 95.0), row("b", 94.0), row("c", 96.0), row("d", float("nan"), "")]
    lines = check_findings(table, [Finding("a > b", "order", ("a", "b")),
                                   Finding("a > b > c", "order", ("a", "b", "c")),
                                   Finding("c best", "best", ("c", "a", "b")), Finding("a > d", "order", ("a", "d")),
                                   Finding("a > e", "order", ("a", "e"))])
    assert lines[0].startswith("- Paper: a > b. Confirmed here (a 95.00, b 94.00)")
    assert "**Not confirmed** here (a 95.00, b 94.00, c 96.00)" in lines[1]
    assert "Confirmed" in lines[2] and "Not checkable" in lines[3] and "Not checkable" in lines[4]
    # a difference within one std over seeds is said so; a row trained for fewer epochs than its paper decides
    # nothing, and its numbers are not quoted
    close = [{**row("a", 95.0), "oa_std": 2.0}, row("b", 94.0)]
    line = check_findings(close, [Finding("a > b", "order", ("a", "b"))])[0]
    assert "Confirmed" in line and "not resolved by these seeds: a vs b" in line
    short = [row("a", 95.0), {**row("b", 94.0), "epochs": 3, "paper_epochs": 50}]
    line = check_findings(short, [Finding("a > b", "order", ("a", "b"))])[0]
    assert "Not tested yet: b ran 3 of 50 epochs" in line
    assert "Confirmed" not in line and "94.00" not in line


def test_a_reduced_budget_row_sits_apart_from_the_results():
    from hsiclip.experiments.catalog import Experiment
    from hsiclip.experiments.reproduce import markdown

    def row(label, epochs, paper_epochs):
        return {"label": label, "changes": "", "epochs": epochs, "paper_epochs": paper_epochs, "seeds": "0 1",
                "oa_mean": 90.0, "oa_std": 1.0, "aa_mean": 80.0, "aa_std": 1.0, "kappa_mean": 85.0, "kappa_std": 1.0,
                "train_s_mean": 1.0, "paper_oa": None, "paper_kappa": None, "status": "", "machines": ["m"]}

    text = markdown(Experiment("x", "X", "Table 9"), [row("full", 100, 100), row("short", 3, 100),
                                                      row("pixel", None, None)], scene="s", command="c", seeds=[0, 1])
    main, _, apart = text.partition("## Reduced budget, not comparable")
    assert "| full |" in main and "| pixel |" in main and "| short |" not in main
    assert "| short | – | 3 (100) |" in apart and "| full |" not in apart


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


def test_figure_experiments_on_a_tiny_scene(tmp_path, tiny_scene, text_cache, small_recipes, monkeypatch):
    monkeypatch.setattr(figures, "LANDSCAPE_GRID", 5)
    monkeypatch.setattr(figures, "UMAP_POINTS", 200)
    kw = _kw(tmp_path, text_cache)
    vlm = ("ours", "mcls_clip")
    land = reproduce.reproduce("loss-landscape", tiny_scene, [0], **kw)
    with open(land[1]) as f:
        cells = list(csv.DictReader(f))
    assert len(cells) == 2 * 25 and {c["system"] for c in cells} == set(vlm)
    assert "basin share" in land[0].read_text().lower() and land[2].stat().st_size > 10_000
    heavy = [s for s in figures.MAP_SYSTEMS if s not in (*vlm, "ssftt")]
    maps = reproduce.reproduce("maps", tiny_scene, [0], skip=heavy, epochs={"ssftt": 3}, **kw)
    with open(maps[1]) as f:
        rows = {r["system"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(figures.MAP_SYSTEMS)
    assert all(rows[s]["status"] == "done" for s in vlm) and all(rows[s]["status"] == "not run" for s in heavy)
    # SSFTT ran 3 of its paper's 100 epochs: not a result, so neither a map nor an OA
    assert rows["ssftt"]["status"].startswith("reduced budget (3 of 100 epochs)") and not rows["ssftt"]["oa"]
    # the map's OA is the one the comparison recorded (the runs trained for the landscape are reused)
    with monkeypatch.context() as m:
        m.setattr(pipeline, "train", _boom)
        recs = run_comparison(tiny_scene, list(vlm), [0], work_dir=tmp_path / "compare", train_missing=False,
                              progress=False, log=lambda m: None)
    assert [r["model"] for r in recs] == list(vlm)
    for r in recs:
        assert float(rows[r["model"]]["oa"]) == pytest.approx(r["oa"], abs=0.01)


@pytest.mark.slow
def test_the_embeddings_figure_on_a_tiny_scene(tmp_path, tiny_scene, text_cache, small_recipes, monkeypatch):
    monkeypatch.setattr(figures, "UMAP_POINTS", 200)
    emb = reproduce.reproduce("embeddings", tiny_scene, [0, 1], **_kw(tmp_path, text_cache))
    text = emb[0].read_text()
    for name in ("ours", "mcls_clip"):
        assert f"| {get_system(name).label} | 0 1 |" in text
    with open(emb[1]) as f:
        stats = list(csv.DictReader(f))
    assert [(s["system"], s["seed"]) for s in stats] == [("ours", "0"), ("ours", "1"), ("mcls_clip", "0"),
                                                         ("mcls_clip", "1")]
    assert all(-1 <= float(s["silhouette"]) <= 1 for s in stats)
    assert emb[2].stat().st_size > 20_000


def test_cli_lists_and_rejects_unknown_experiments(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in experiment_names())
    assert main(["reproduce", "no-such-table"]) == 1
    assert "unknown experiment 'no-such-table'" in capsys.readouterr().err


def test_a_variant_record_of_another_recipe_is_not_reused(tmp_path, tiny_scene, small_recipes):
    """A recipe-variant row's record counts only while it was trained with the row's current recipe."""
    row = Row("semi only", "ours", (("loss.negatives", "semi"),))
    system = get_system("ours")
    current = system.flat_recipe(system.recipe(tiny_scene.name, seed=0, **dict(row.overrides)))
    stem = variant_dir(tmp_path / "work", tiny_scene.name, row) / "seed0"
    kw = {"work_dir": tmp_path / "work", "compare_dir": tmp_path / "compare", "train_missing": False,
          "progress": False, "log": lambda msg: None}
    RecordStore.save(stem, {"seed": 0, "oa": 50.0, "recipe": current})
    (result,) = run_rows(tiny_scene, [row], [0], **kw)
    assert [r["oa"] for r in result["records"]] == [50.0] and result["status"] == ""
    RecordStore.save(stem, {"seed": 0, "oa": 50.0, "recipe": {**current, "train.epochs": current["train.epochs"] + 1}})
    (result,) = run_rows(tiny_scene, [row], [0], **kw)
    assert result["records"] == [] and result["status"] == "not run yet"
