"""The README's Python example, run verbatim, and the replay of committed records through the one unit of work."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import hsiclip

REPO = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's Python API section has no python code block"
    return match.group(1)


def test_the_readme_example_is_in_the_api():
    """Every `hsiclip.<name>` the example calls is part of the public API."""
    names = set(re.findall(r"hsiclip\.(\w+)", readme_example()))
    assert names and names <= set(hsiclip.__all__)


@pytest.mark.slow
def test_the_readme_example_runs_verbatim(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_example(), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert re.search(r"OA \d+\.\d\d, kappa \d+\.\d\d", out)
    assert (tmp_path / "runs" / "ip-seed0" / "record.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ours", pytest.param("ssftt", marks=pytest.mark.xfail(strict=True, reason=(
    "the committed record (98.48, trained 2026-12-01) differs from what this machine gives both through the new "
    "unit of work and through the pre-refactor code at 304c9d0 (98.55, 6 of 9,224 test pixels): a machine "
    "difference, not the refactor (issue 18's note)")))])
def test_training_again_gives_the_committed_records_oa(name, data_dir, text_cache):
    """The paper recipe and SSFTT on Indian Pines, seed 0, through `hsiclip.train`, against their committed
    comparison records (same split, same seed, on one thread as they were measured: conftest)."""
    (path,) = (REPO / "results" / "records" / "compare" / "indian_pines" / "paper" / name).glob("seed0-ep*.json")
    committed = json.loads(path.read_text())
    scene = hsiclip.load_scene("indian_pines", data_dir=data_dir)
    run = hsiclip.train(scene, name, seed=0, protocol="paper", epochs=committed["epochs"], progress=False,
                        cache_dir=text_cache)
    assert run.record["n_train"] == committed["n_train"] and run.record["n_test"] == committed["n_test"]
    assert run.record["flops"] == committed["flops"]
    assert run.record["trainable_params"] == committed["trainable_params"]
    assert abs(run.metrics["oa"] - committed["oa"]) <= 0.01
