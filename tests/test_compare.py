"""`hsiclip compare`: every system on one split, resumable records, tables with the paper's numbers kept apart."""

import csv
import json
import re

import pytest
from conftest import REPO, make_tiny_scene

import hsiclip
from hsiclip import pipeline
from hsiclip.cli import main
from hsiclip.config import load_config
from hsiclip.errors import ConfigError
from hsiclip.experiments.compare import ALL_SYSTEMS, default_epochs, recipe_changes, resolve_epochs, run_comparison
from hsiclip.experiments.report import CSV_COLUMNS, markdown, paper_numbers, summarise, write_report
from hsiclip.pipeline import train as real_train
from hsiclip.records import RecordStore
from hsiclip.systems import get_system


def _boom(*a, **k):
    raise AssertionError("should have been skipped")


def test_compare_end_to_end_on_a_tiny_scene_and_resumes(tmp_path, monkeypatch):
    scene = make_tiny_scene(bands=32)
    work = tmp_path / "work"
    kw = {"fraction": 0.2, "epochs": {"ssftt": 3}, "work_dir": work, "progress": False, "log": lambda m: None}
    records = run_comparison(scene, ["ssftt", "rf"], [0, 1], **kw)
    assert [(r["model"], r["seed"]) for r in records] == [("ssftt", 0), ("ssftt", 1), ("rf", 0), ("rf", 1)]
    by = {(r["model"], r["seed"]): r for r in records}
    for seed in (0, 1):  # both systems are scored on the same test pixels for a seed
        assert by["ssftt", seed]["n_test"] == by["rf", seed]["n_test"]
        assert sum(map(sum, by["ssftt", seed]["confusion"])) == by["ssftt", seed]["n_test"]
    paper_epochs = default_epochs("ssftt", "tiny")
    assert paper_epochs > 3
    assert by["ssftt", 0]["epochs"] == 3 and by["ssftt", 0]["paper_epochs"] == paper_epochs
    assert by["rf", 0]["epochs"] is None and by["ssftt", 0]["recipe"]["epochs"] == 3
    assert all(r["oa"] > 60 for r in records), [r["oa"] for r in records]

    paths = write_report(records, tmp_path / "results", command="hsiclip compare ...", machine="test")
    # SSFTT ran 3 of its paper's epochs: a reduced budget, so no row with FLOPs is left for the figure
    assert [p.name for p in paths] == ["compare_tiny.md", "compare_tiny.csv"]
    with open(paths[1]) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[: len(CSV_COLUMNS)] == CSV_COLUMNS
    assert [r["model"] for r in rows] == ["ssftt", "rf"] and rows[0]["seeds"] == "0 1"
    assert [r["budget"] for r in rows] == ["reduced", "full"]
    oa = [by["ssftt", s]["oa"] for s in (0, 1)]
    assert float(rows[0]["oa_mean"]) == pytest.approx(sum(oa) / 2, abs=1e-3)
    assert float(rows[0]["oa_std"]) == pytest.approx(abs(oa[0] - oa[1]) / 2, abs=1e-3)  # population std
    assert int(rows[0]["trainable_params"]) > 0 and int(rows[0]["flops"]) > 0
    assert rows[1]["flops"] == "" and rows[1]["paper_oa"] == ""  # the classical rows have neither
    md = paths[0].read_text()
    main_table, reduced = md.split("## Reduced budget, not comparable")
    assert "| SSFTT |" not in main_table and "| random forest |" in main_table
    assert f"| SSFTT | **3** ({paper_epochs}) | 0 1 |" in reduced  # apart, with the epochs it ran
    assert "Per-class accuracy" in main_table and "Asphalt" in main_table
    assert "SSFTT" not in main_table.split("Per-class accuracy")[1]
    # at its full budget the same row is a result: in the table, the per-class table and the figure
    full = [{**r, "epochs": r["paper_epochs"]} if r["model"] == "ssftt" else r for r in records]
    paths = write_report(full, tmp_path / "results", command="hsiclip compare ...", machine="test")
    assert [p.name for p in paths] == ["compare_tiny.md", "compare_tiny.csv", "compare_tiny.png"]
    assert "Reduced budget" not in paths[0].read_text() and paths[2].stat().st_size > 10_000
    # a table of pixel classifiers alone has nothing for the OA-FLOPs figure: no PNG, and no stale one left
    only_rf = write_report([r for r in records if r["model"] == "rf"], tmp_path / "results", command="...",
                           machine="test")
    assert [p.name for p in only_rf] == ["compare_tiny.md", "compare_tiny.csv"] and not paths[2].exists()

    # an interrupted comparison redoes only the missing pair, on the same split
    missing = RecordStore(work).stem("tiny", "paper", 0.2, "rf", 1, None).with_suffix(".json")
    assert missing == work / "tiny" / "paper-0.2" / "rf" / "seed1.json" and missing.is_file()
    missing.unlink()
    trained = []

    def spy(scene, system, **k):
        trained.append((system, k["seed"]))
        return real_train(scene, system, **k)

    monkeypatch.setattr(pipeline, "train", spy)
    again = run_comparison(scene, ["ssftt", "rf"], [0, 1], **kw)
    assert trained == [("rf", 1)] and missing.is_file()
    assert [r["oa"] for r in again] == [r["oa"] for r in records]  # the random forest is seeded
    assert again[3]["n_train"] == by["rf", 1]["n_train"] and again[3]["n_test"] == by["rf", 1]["n_test"]
    # changing the epochs makes a new pair rather than reusing a record trained for another budget
    monkeypatch.setattr(pipeline, "train", _boom)
    with pytest.raises(AssertionError, match="skipped"):
        run_comparison(scene, ["ssftt"], [0], **{**kw, "epochs": {"ssftt": 4}})


def test_unknown_names_fail_before_any_training(tiny_scene, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "train", _boom)
    work = tmp_path / "work"
    with pytest.raises(ConfigError, match="valid names"):
        run_comparison(tiny_scene, ["rf", "resnet"], [0], work_dir=work, progress=False)
    with pytest.raises(ConfigError, match="not compared"):
        run_comparison(tiny_scene, ["rf"], [0], epochs={"ssftt": 2}, work_dir=work, progress=False)
    assert not work.exists()


def test_epochs_are_the_papers_unless_overridden_or_capped():
    paper = default_epochs("hybridsn", "indian_pines")
    assert isinstance(paper, int) and paper > 7
    assert resolve_epochs("hybridsn", "indian_pines") == paper
    assert resolve_epochs("hybridsn", "indian_pines", {"hybridsn": 7}) == 7
    assert resolve_epochs("hybridsn", "indian_pines", {"ssftt": 7}) == paper  # another system's override
    assert resolve_epochs("hybridsn", "indian_pines", max_epochs=paper - 1) == paper - 1
    assert resolve_epochs("hybridsn", "indian_pines", max_epochs=paper + 1) == paper  # a cap never raises it
    assert resolve_epochs("hybridsn", "indian_pines", {"hybridsn": 7}, max_epochs=5) == 5  # caps overrides too
    # ours follows the scene's own paper recipe, and the Indian Pines one on a scene without a recipe
    assert resolve_epochs("ours", "pavia_university") == load_config("paper_pavia_university").train.epochs
    assert resolve_epochs("ours", "tiny") == load_config("paper_indian_pines").train.epochs
    assert resolve_epochs("svm", "indian_pines", max_epochs=20) is None


def test_mcls_clip_row_is_the_builtin_recipe():
    assert get_system("mcls_clip").recipe("indian_pines") == load_config("mcls_clip_indian_pines")
    assert get_system("ours").recipe("indian_pines") == load_config("paper_indian_pines")
    assert get_system("flagship").recipe("indian_pines") == load_config("flagship_indian_pines")


def test_every_compared_system_resolves_and_leads_the_model_list():
    assert len(set(ALL_SYSTEMS)) == len(ALL_SYSTEMS)
    for name in ALL_SYSTEMS:
        system = get_system(name)
        assert system.name == name and system.label
        assert default_epochs(name, "indian_pines") == system.epochs(system.recipe("indian_pines"))
    models = hsiclip.list_models()
    assert models[: len(ALL_SYSTEMS)] == list(ALL_SYSTEMS) and len(set(models)) == len(models)
    for name in models:  # the built-in recipes after the table's rows resolve too
        assert get_system(name).name == name


def test_paper_numbers_are_the_papers():
    """Every number in paper_results.toml is printed in the paper (when the paper's text is available)."""
    paper = REPO.parent / "shared" / "paper" / "curated-text-prompts-hsi.txt"
    if not paper.is_file():
        pytest.skip(f"the paper's text ({paper}) is not shipped with the code; this check runs where it is")
    text = paper.read_text()
    n = 0
    for name in ALL_SYSTEMS:
        for scene in ("indian_pines", "pavia_university"):
            for key, value in paper_numbers(name, scene).items():
                if key != "paper_table" and value is not None:
                    assert re.search(rf"(?<![\d.]){value:.2f}(?![\d])", text), (name, scene, key, value)
                    n += 1
    assert n > 0
    assert paper_numbers("svm", "indian_pines")["paper_oa"] is None  # the paper has no pixel classifier
    assert all(v is None for k, v in paper_numbers("ours", "tiny").items() if k in ("paper_oa", "paper_kappa"))


def _record(model, oa, seed=0, scene="indian_pines"):
    """A finished pair's record, as `run_comparison` returns it (two classes)."""
    return {"model": model, "label": get_system(model).label, "kind": get_system(model).kind, "scene": scene,
            "protocol": "paper", "fraction": 0.1, "seed": seed, "epochs": None, "paper_epochs": None, "oa": oa,
            "aa": oa, "kappa": oa - 1, "per_class": [oa, oa], "confusion": [[1, 0], [0, 1]],
            "trainable_params": None, "flops": None, "train_s": 1.0, "infer_s": 0.1, "class_names": ["a", "b"],
            "n_train": 10, "n_test": 90, "classes_missing_in_test": []}


def test_the_table_keeps_the_papers_numbers_apart_and_says_which_systems_beat_ours(tmp_path):
    records = [_record("ours", 94.0), _record("ssftt", 97.5), _record("rf", 72.0)]
    paths = write_report(records, tmp_path, command="hsiclip compare ...", machine="test")
    with open(paths[1]) as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    for r in records[:2]:  # measured and printed OA in their own columns
        assert float(rows[r["model"]]["oa_mean"]) == pytest.approx(r["oa"])
        paper = paper_numbers(r["model"], "indian_pines")["paper_oa"]
        assert paper != r["oa"] and float(rows[r["model"]]["paper_oa"]) == pytest.approx(paper)
    assert rows["rf"]["paper_oa"] == ""

    def lines(recs):
        return [line for line in markdown(summarise(recs), scene="indian_pines", protocol="paper", command="c",
                                          machine="m").splitlines() if "above ours" in line]

    label = get_system("ssftt").label
    assert lines(records) == [f"- Measured above ours (paper recipe, OA 94.00): {label} 97.50 (+3.50)."]
    assert lines(records[::2]) == ["- No system's mean OA is above ours (paper recipe, 94.00)."]
    assert lines(records[1:]) == []  # no row of ours: nothing to say


def test_a_record_of_another_recipe_is_not_taken_for_a_finished_pair(tmp_path, monkeypatch):
    """Records key on (system, seed, epochs) and keep their recipe; a record trained with other settings (a recipe
    changed since) is trained again, or left out with `train_missing=False`."""
    scene = make_tiny_scene(bands=8)
    system = get_system("ours")
    recipe = system.flat_recipe(system.recipe("tiny", epochs=3))
    stem = RecordStore(tmp_path).stem("tiny", "paper", 0.1, "ours", 0, 3)
    stem.parent.mkdir(parents=True)
    base = {"model": "ours", "seed": 0, "oa": 50.0}
    logs: list[str] = []
    kw = {"epochs": {"ours": 3}, "work_dir": tmp_path, "progress": False, "log": logs.append,
          "train_missing": False}
    monkeypatch.setattr(pipeline, "train", _boom)
    changed = {**recipe, "model.mask_ratio": 0.5}
    assert recipe["model.mask_ratio"] != 0.5
    for stored, kept in ((recipe, True), (None, True), (changed, False)):
        stem.with_suffix(".json").write_text(json.dumps({**base, **({"recipe": stored} if stored else {})}))
        logs.clear()
        got = run_comparison(scene, ["ours"], [0], **kw)
        assert (got == [{**base, **({"recipe": stored} if stored else {})}]) is kept
    assert logs == [f"{system.label}, seed 0: its record was trained with another recipe "
                    f"(model.mask_ratio: 0.5 -> {recipe['model.mask_ratio']!r}): left out"]
    # with training allowed, the changed pair is trained again
    with pytest.raises(AssertionError, match="skipped"):
        run_comparison(scene, ["ours"], [0], **{**kw, "train_missing": True})
    assert logs[-2] == logs[0].replace("left out", "training again")
    # a field the record does not know (added to the config later), or one it has and the config no longer
    # (removed at its "off" value), is not a change
    assert recipe_changes({"model.dim": 64}, {"model.dim": 64, "model.new_option": 1}) == []
    assert recipe_changes({"model.dim": 64, "train.ema": 0.0}, {"model.dim": 64}) == []
    assert recipe_changes({"model.dim": 64}, {"model.dim": 32}) == ["model.dim: 64 -> 32"]


@pytest.mark.slow
def test_cli_compare_on_indian_pines(data_dir, tmp_path, capsys):
    args = ["compare", "--scene", "indian_pines", "--models", "rf,ssftt", "--seeds", "0", "--epochs", "ssftt=1",
            "--data-dir", str(data_dir), "--work-dir", str(tmp_path / "w"), "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    md = (tmp_path / "compare_indian_pines.md").read_text()
    assert "hsiclip compare --scene indian_pines --models rf,ssftt" in md  # the exact command is recorded
    main_table, reduced = md.split("## Reduced budget, not comparable")  # 1 of SSFTT's 100 epochs: apart
    assert "| SSFTT | **1** (100) | 0 |" in reduced and "| random forest | – | 0 |" in main_table
    rec = json.loads((tmp_path / "w" / "indian_pines" / "paper" / "rf" / "seed0.json").read_text())
    assert rec["n_train"] == 1025 and rec["n_test"] == 9224 and 50 < rec["oa"] < 100


def test_cli_rejects_bad_arguments_before_loading_data(capsys):
    assert main(["compare", "--models", "rf", "--seeds", "zero", "--data-dir", "/nonexistent"]) == 1
    assert "--seeds expects" in capsys.readouterr().err
    assert main(["compare", "--models", "rf,resnet", "--data-dir", "/nonexistent"]) == 1
    assert "unknown system 'resnet'" in capsys.readouterr().err
    assert main(["compare", "--models", "rf", "--executor", "dask", "--data-dir", "/nonexistent"]) == 1
    assert "--executor must be one of auto, local, ray" in capsys.readouterr().err


def test_cli_lists_the_systems(capsys):
    assert main(["compare", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ALL_SYSTEMS:
        assert name in out
