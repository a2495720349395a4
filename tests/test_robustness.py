"""The bad-input and interrupt table of benchmarks/robustness.py (results/robustness.md), one test per row: the exit
status (2 usage error, 1 bad input, 130 interrupt), one `error:` line without a traceback, nothing left behind."""

import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import robustness

_ROOT = tempfile.TemporaryDirectory(prefix="hsiclip-robustness-")  # the inputs, built once at collection (~3 s)
CASES = {c.name: c for c in robustness.cases(Path(_ROOT.name))}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, text_cache, monkeypatch):
    monkeypatch.setenv("HSICLIP_CACHE_DIR", str(text_cache))
    o = robustness.run_in_process(CASES[name])
    assert o.code == o.expected, o
    assert o.one_line and not o.traceback, o
    assert o.phrase_found, (CASES[name].phrase, o.line)
    assert not o.leftovers, o


def test_the_table_covers_usage_errors_and_bad_input():
    kinds = [c.kind for c in CASES.values()]
    assert kinds.count("usage error") >= 4 and kinds.count("bad input") >= 35


@pytest.mark.slow
@pytest.mark.parametrize("case", robustness.INTERRUPTS, ids=lambda f: f.__name__)
def test_interrupt(case, tmp_path, monkeypatch):
    """SIGINT to a real `hsiclip train` / `hsiclip predict` (status 130, "interrupted", nothing left), and SIGKILL
    during predict followed by the same command (the stale staging folder removed, the uninterrupted map)."""
    monkeypatch.setenv("HSICLIP_CACHE_DIR", str(tmp_path / "cache"))
    o = case(tmp_path)
    assert not o.note or o.expected == 0, o.note  # the signal reached a running command
    assert o.ok, o
