"""`hsiclip compare`: every system on one split, resumable records, tables with the paper's numbers kept apart."""

import csv
import json
import re

import pytest
from conftest import REPO, make_tiny_scene

from hsiclip import compare
from hsiclip.cli import main
from hsiclip.compare import ALL_SYSTEMS, SYSTEMS, resolve_epochs, run_comparison, vlm_config
from hsiclip.config import load_config
from hsiclip.errors import ConfigError
from hsiclip.report import CSV_COLUMNS, paper_numbers, write_report


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
    assert by["ssftt", 0]["epochs"] == 3 and by["ssftt", 0]["paper_epochs"] == 100
    assert all(r["oa"] > 60 for r in records), [r["oa"] for r in records]

    paths = write_report(records, tmp_path / "results", command="hsiclip compare ...", machine="test")
    assert [p.name for p in paths] == ["compare_tiny.md", "compare_tiny.csv", "compare_tiny.png"]
    with open(paths[1]) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[: len(CSV_COLUMNS)] == CSV_COLUMNS
    assert [r["model"] for r in rows] == ["ssftt", "rf"] and rows[0]["seeds"] == "0 1"
    oa = [by["ssftt", s]["oa"] for s in (0, 1)]
    assert float(rows[0]["oa_mean"]) == pytest.approx(sum(oa) / 2, abs=1e-3)
    assert float(rows[0]["oa_std"]) == pytest.approx(abs(oa[0] - oa[1]) / 2, abs=1e-3)  # population std
    assert int(rows[0]["trainable_params"]) > 0 and int(rows[0]["flops"]) > 0
    assert rows[1]["flops"] == "" and rows[1]["paper_oa"] == ""  # the classical rows have neither
    md = paths[0].read_text()
    assert "**3** (100)" in md  # a reduced budget is stated in the row itself
    assert "Per-class accuracy" in md and "Asphalt" in md
    assert paths[2].stat().st_size > 10_000
    # a table of pixel classifiers alone has nothing for the OA-FLOPs figure: no PNG, and no stale one left
    only_rf = write_report([r for r in records if r["model"] == "rf"], tmp_path / "results", command="...",
                           machine="test")
    assert [p.name for p in only_rf] == ["compare_tiny.md", "compare_tiny.csv"] and not paths[2].exists()

    # a second call with everything finished trains nothing
    def boom(*a, **k):
        raise AssertionError("should have been skipped")

    monkeypatch.setattr(compare, "train_baseline", boom)
    monkeypatch.setattr(compare, "train_classical", boom)
    again = run_comparison(scene, ["ssftt", "rf"], [0, 1], **kw)
    assert [r["oa"] for r in again] == [r["oa"] for r in records]
    # an interrupted comparison redoes only the missing pair
    missing = work / "tiny" / "paper-0.2" / "rf" / "seed1.json"
    assert missing.is_file()
    missing.unlink()
    monkeypatch.setattr(compare, "train_classical", lambda *a, **k: {**by["rf", 1], "oa": 12.5})
    again = run_comparison(scene, ["ssftt", "rf"], [0, 1], **kw)
    assert [r["oa"] for r in again][:3] == [r["oa"] for r in records][:3] and again[3]["oa"] == 12.5
    # changing the epochs makes a new pair rather than reusing a record trained for another budget
    monkeypatch.setattr(compare, "train_baseline", boom)
    with pytest.raises(AssertionError, match="skipped"):
        run_comparison(scene, ["ssftt"], [0], **{**kw, "epochs": {"ssftt": 4}})


def test_unknown_names_fail_before_any_training(tmp_path):
    scene = make_tiny_scene(bands=32)
    with pytest.raises(ConfigError, match="valid names"):
        run_comparison(scene, ["rf", "resnet"], [0], work_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="not compared"):
        run_comparison(scene, ["rf"], [0], epochs={"ssftt": 2}, work_dir=tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


def test_epochs_are_the_papers_unless_overridden_or_capped():
    assert resolve_epochs("hybridsn", "indian_pines") == 100
    assert resolve_epochs("hybridsn", "indian_pines", {"hybridsn": 7}) == 7
    assert resolve_epochs("hybridsn", "indian_pines", max_epochs=20) == 20
    assert resolve_epochs("ours", "pavia_university") == 25  # the paper's PU recipe
    assert resolve_epochs("svm", "indian_pines", max_epochs=20) is None


def test_mcls_clip_row_is_the_builtin_recipe():
    ours = vlm_config("mcls_clip", "indian_pines").to_dict()
    builtin = load_config("mcls_clip_indian_pines").to_dict()
    assert ours == builtin
    assert vlm_config("ours", "indian_pines") == load_config("paper_indian_pines")


def test_every_system_is_in_the_table_order():
    assert sorted(ALL_SYSTEMS) == SYSTEMS.names() and len(ALL_SYSTEMS) == 17  # 15 comparison rows + ours + flagship


def test_paper_numbers_are_the_papers():
    """Every number in paper_results.toml is printed in the paper (when the paper's text is available)."""
    paper = REPO.parent / "shared" / "paper" / "curated-text-prompts-hsi.txt"
    if not paper.is_file():
        pytest.skip("paper text not found")
    text = paper.read_text()
    n = 0
    for name in ALL_SYSTEMS:
        for scene in ("indian_pines", "pavia_university"):
            for key, value in paper_numbers(name, scene).items():
                if key != "paper_table" and value is not None:
                    assert re.search(rf"(?<![\d.]){value:.2f}(?![\d])", text), (name, scene, key, value)
                    n += 1
    assert n == 11 * (4 + 2 * 3) + 2 + 2 * 4  # Table 1 (11 rows: 4 accuracies + 3 costs read per scene), 7, 8
    assert paper_numbers("ours", "indian_pines")["paper_oa"] == 94.03
    assert paper_numbers("svm", "indian_pines")["paper_oa"] is None


@pytest.mark.slow
def test_cli_compare_on_indian_pines(data_dir, tmp_path, capsys):
    args = ["compare", "--scene", "indian_pines", "--models", "rf,ssftt", "--seeds", "0", "--epochs", "ssftt=1",
            "--data-dir", str(data_dir), "--work-dir", str(tmp_path / "w"), "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    md = (tmp_path / "compare_indian_pines.md").read_text()
    assert "hsiclip compare --scene indian_pines --models rf,ssftt" in md  # the exact command is recorded
    assert "| SSFTT | **1** (100) | 0 |" in md and "| 91.11 | 89.94 |" in md  # paper's SSFTT row, own columns
    rec = json.loads((tmp_path / "w" / "indian_pines" / "paper" / "rf" / "seed0.json").read_text())
    assert rec["n_train"] == 1025 and rec["n_test"] == 9224 and 50 < rec["oa"] < 100
    assert main(["compare", "--models", "rf", "--seeds", "zero"]) == 1
    assert "--seeds expects" in capsys.readouterr().err


def test_cli_lists_the_systems(capsys):
    assert main(["compare", "--list"]) == 0
    out = capsys.readouterr().out
    assert "M-CLS CLIP" in out and "HybridSN" in out


def test_the_table_says_which_systems_beat_ours():
    from hsiclip.report import _above_ours

    rows = [{"model": "ours", "label": "ours", "oa_mean": 94.0}, {"model": "ssftt", "label": "SSFTT", "oa_mean": 97.5},
            {"model": "rf", "label": "random forest", "oa_mean": 72.0}]
    assert _above_ours(rows) == ["- Measured above ours (paper recipe, OA 94.00): SSFTT 97.50 (+3.50)."]
    assert _above_ours(rows[::2]) == ["- No system's mean OA is above ours (paper recipe, 94.00)."]
    assert _above_ours(rows[1:]) == []


def test_a_record_of_another_recipe_is_not_taken_for_a_finished_pair(tmp_path):
    """Records key on (system, seed, epochs); a vision-language row's record also keeps its recipe, and a record
    trained with other settings (a recipe changed since) is trained again, or left out by --no-train."""
    scene = make_tiny_scene(bands=8)
    recipe = compare.recipe_fields(compare.vlm_run_config("ours", "tiny", 3))
    stem = compare.record_path(tmp_path, "tiny", "paper", 0.1, "ours", 0, 3)
    stem.parent.mkdir(parents=True)
    base = {"model": "ours", "seed": 0, "oa": 50.0}
    logs: list[str] = []
    kw = {"epochs": {"ours": 3}, "work_dir": tmp_path, "progress": False, "log": logs.append, "train": False}
    for stored, kept in ((recipe, True), (None, True), ({**recipe, "model.mask_ratio": 0.5}, False)):
        stem.with_suffix(".json").write_text(json.dumps({**base, **({"recipe": stored} if stored else {})}))
        logs.clear()
        got = run_comparison(scene, ["ours"], [0], **kw)
        assert (got == [{**base, **({"recipe": stored} if stored else {})}]) is kept
    assert logs == ["ours (paper recipe), seed 0: its record was trained with another recipe "
                    "(model.mask_ratio: 0.5 -> 0.0): left out"]
    # a field the record does not know (added to the config later) is not a change
    assert compare.recipe_changes({"model.dim": 64}, {"model.dim": 64, "model.new_option": 1}) == []
