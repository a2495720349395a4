"""End to end: the library on a tiny synthetic scene, old run folders, the command line on the real Indian Pines, and
bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

import hsiclip
from hsiclip.cli import main
from hsiclip.errors import ConfigError
from hsiclip.run import METRIC_KEYS

RUN_FILES = {"config.json", "split.npz", "checkpoint.pt", "metrics.json", "history.json", "record.json",
             "predictions.npy"}


def same_metrics(a: dict, b: dict) -> bool:
    return all(a[k] == b[k] for k in METRIC_KEYS)


def test_train_save_load_evaluate_predict_on_tiny_scene(tiny_scene, tiny_recipe, text_cache, tmp_path):
    from hsiclip.experiments.plots import write_map

    run = hsiclip.train(tiny_scene, str(tiny_recipe), seed=0, fraction=0.2, cache_dir=text_cache, progress=False)
    metrics = run.metrics
    assert metrics["oa"] > 80, metrics  # three well-separated spectra: far above chance (33%)
    assert set(metrics) >= {"oa", "aa", "kappa", "per_class", "confusion"}
    assert run.record["oa"] == metrics["oa"] and run.record["n_train"] == len(run.split.train)
    assert run.save(tmp_path / "run") == tmp_path / "run"
    assert {p.name for p in (tmp_path / "run").iterdir()} == RUN_FILES
    assert not list(tmp_path.glob(".run.*"))  # the temporary sibling folder was renamed
    again = hsiclip.load_run(tmp_path / "run")
    assert again.scene == "tiny" and again.class_names == ("Corn", "Asphalt", "Water") and again.window == 9
    assert again.metrics == json.loads(json.dumps(metrics)) and again.record == json.loads(json.dumps(run.record))
    np.testing.assert_array_equal(again.split.test, run.split.test)
    np.testing.assert_array_equal(again.test_pred, run.test_pred)
    assert same_metrics(again.evaluate(tiny_scene), metrics)
    pred, conf = again.predict(tiny_scene.cube)
    assert pred.shape == tiny_scene.labels.shape and pred.min() >= 1 and pred.max() <= 3
    assert ((conf > 0) & (conf <= 1)).all()
    np.testing.assert_array_equal(pred.reshape(-1)[run.split.test], run.test_pred + 1)  # the scored predictions
    fresh, fresh_conf = run.predict(tiny_scene.cube, tile=5)  # tile by tile = the reloaded run's whole scene
    np.testing.assert_array_equal(fresh, pred)
    np.testing.assert_allclose(fresh_conf, conf, rtol=1e-5)
    assert write_map(again, tiny_scene, tmp_path / "map.png", progress=False).stat().st_size > 5_000


def test_an_ensemble_run_reloads_evaluates_and_predicts(tiny_scene, text_cache, tmp_path):
    from hsiclip.data.rasters import CubeSource
    from hsiclip.models import HSIClipEnsemble
    from hsiclip.predict import predict_cube

    run = hsiclip.train(tiny_scene, "flagship", seed=0, fraction=0.2, epochs=2, cache_dir=text_cache, progress=False,
                        **{"text.encoder": "stub", "data.pca_components": 5, "model.window": 7, "model.members": 2,
                           "train.warmup_epochs": 1})
    run.save(tmp_path / "run")
    again = hsiclip.load_run(tmp_path / "run")
    assert isinstance(again.model, HSIClipEnsemble) and again.system.name == "flagship"
    assert same_metrics(again.evaluate(tiny_scene), run.metrics)
    whole, conf = again.predict(tiny_scene.cube)
    np.save(tmp_path / "cube.npy", tiny_scene.cube)
    summary = predict_cube(again, CubeSource(tmp_path / "cube.npy"), tmp_path / "pred", tile=8, progress=False,
                           compile="no")
    assert summary["stem_per_tile"]  # each member's stem once per tile, not once per window
    np.testing.assert_array_equal(np.load(tmp_path / "pred" / "classes.npy"), whole)
    np.testing.assert_allclose(np.load(tmp_path / "pred" / "confidence.npy"), conf, rtol=1e-4)


# --- run folders written before the refactor ---------------------------------------------------------------------
def old_config(run) -> dict:
    """The run's recipe as an old `RunConfig` wrote it: with every removed field at its "off" value."""
    cfg = run.recipe.to_dict()
    cfg["data"].update(pca_whiten=True, pca_fit="scene")
    cfg["model"].update(name="hsiclip", dropout=0.0, member_windows=[], init="torch")
    cfg["text"].update(context=0)
    cfg["train"].update(tta=False, ema=0.0, val_fraction=0.0, label_smoothing=0.0, spectral_fill=0.0,
                        spectral_noise=0.0)
    return cfg


def write_old_run(run, folder: Path, cfg: dict) -> Path:
    """A run folder as `train_run` wrote it: no system, scene, record or test predictions; the PCA under "pca"."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    run.split.save(folder / "split.npz")
    torch.save({"model": run.model.state_dict(), "config": cfg, "pca": run.preprocess.state_dict(),
                "class_names": list(run.class_names), "scene_source": "synthetic", "hsiclip_version": "0.1.0"},
               folder / "checkpoint.pt")
    (folder / "history.json").write_text(json.dumps(run.history) + "\n")
    (folder / "metrics.json").write_text(json.dumps(run.metrics, indent=1) + "\n")
    return folder


@pytest.fixture
def tiny_run(tiny_scene, tiny_recipe, text_cache):
    return hsiclip.train(tiny_scene, str(tiny_recipe), seed=1, fraction=0.2, epochs=2, cache_dir=text_cache,
                         progress=False)


def test_an_old_run_folder_still_loads_evaluates_and_predicts(tiny_run, tiny_scene, tmp_path):
    old = write_old_run(tiny_run, tmp_path / "old", old_config(tiny_run))
    run = hsiclip.load_run(old)
    assert run.system.name == "ours" and run.record is None and run.test_pred is None
    assert run.scene == "tiny"  # from the config: old checkpoints do not name their scene
    assert run.recipe == tiny_run.recipe  # the removed fields at their "off" value are dropped
    np.testing.assert_array_equal(run.preprocess.components, tiny_run.preprocess.components)
    assert run.metrics == json.loads(json.dumps(tiny_run.metrics))
    assert same_metrics(run.evaluate(tiny_scene), run.metrics)
    for a, b in zip(run.predict(tiny_scene.cube), tiny_run.predict(tiny_scene.cube), strict=True):
        np.testing.assert_array_equal(a, b)
    run.save(tmp_path / "new")  # and it saves in the new format
    assert same_metrics(hsiclip.load_run(tmp_path / "new").evaluate(tiny_scene), run.metrics)


@pytest.mark.parametrize(("section", "field", "value"), [("train", "tta", True), ("train", "ema", 0.99),
                                                          ("data", "pca_whiten", False),
                                                          ("model", "name", "resnet")])
def test_an_old_run_with_a_removed_option_switched_on_is_refused(tiny_run, tmp_path, capsys, section, field, value):
    cfg = old_config(tiny_run)
    cfg[section][field] = value
    old = write_old_run(tiny_run, tmp_path / "old", cfg)
    with pytest.raises(ConfigError, match=f"{section}.{field}"):
        hsiclip.load_run(old)
    assert main(["evaluate", str(old), "--quiet"]) == 1  # one line from the command line, no traceback
    err = capsys.readouterr().err
    assert f"{section}.{field}" in err and "removed" in err and "Traceback" not in err


# --- the command line ------------------------------------------------------------------------------------------
def run_cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_cli_train_evaluate_map_on_indian_pines(data_dir, tmp_path, capsys, monkeypatch, text_cache):
    monkeypatch.setenv("HSICLIP_CACHE_DIR", str(text_cache))
    run = tmp_path / "ip"
    code, out, err = run_cli(["train", "--scene", "indian_pines", "--seed", "0", "--out", str(run),
                              "--data-dir", str(data_dir), "--epochs", "1", "--quiet", "--no-map"], capsys)
    assert code == 0, err
    assert "OA" in out and "kappa" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_train"] == 1025 and metrics["n_test"] == 10249 - 1025
    assert 30 < metrics["oa"] <= 100 and len(metrics["per_class"]) == 16
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 1
    code, out, err = run_cli(["evaluate", str(run), "--data-dir", str(data_dir), "--quiet"], capsys)
    assert code == 0, err
    assert "identical" in out
    assert not (run / "map.png").exists()
    code, out, err = run_cli(["map", str(run), "--data-dir", str(data_dir), "--quiet"], capsys)
    assert code == 0, err
    assert (run / "map.png").stat().st_size > 10_000


def synthetic_indian_pines(folder: Path, per_class: int = 8) -> Path:
    """Files named and shaped as Indian Pines' (145 x 145 x 200, 16 classes), a few labelled pixels per class."""
    rng = np.random.default_rng(0)
    gt = np.zeros((145, 145), np.uint8)
    flat = gt.reshape(-1)
    flat[rng.choice(flat.size, 16 * per_class, replace=False)] = np.repeat(np.arange(1, 17), per_class)
    means = rng.integers(1000, 8000, size=(17, 200))
    cube = (means[gt] + rng.integers(0, 300, size=(145, 145, 200))).astype(np.uint16)
    write_ip(folder, folder, cube=cube, gt=gt)
    return folder


def test_cli_trains_any_system_and_evaluate_checks_the_stored_metrics(tmp_path, capsys, monkeypatch):
    """`--config` takes a system name; the run folder reloads through `evaluate` (identical) and `map`."""
    monkeypatch.setenv("HSICLIP_CACHE_DIR", str(tmp_path / "cache"))
    run = tmp_path / "svm"
    common = ["--data-dir", str(synthetic_indian_pines(tmp_path / "data")), "--no-verify", "--quiet"]
    code, out, err = run_cli(["train", "--config", "svm", "--train-fraction", "0.5", "--out", str(run), "--no-map",
                              *common], capsys)
    assert code == 0, err
    record = json.loads((run / "record.json").read_text())
    assert (record["model"], record["n_train"], record["n_test"]) == ("svm", 64, 64)
    assert record["oa"] > 90  # 16 well-separated spectra
    code, out, err = run_cli(["evaluate", str(run), *common], capsys)
    assert code == 0 and "identical" in out, err
    code, out, err = run_cli(["map", str(run), "--out", str(tmp_path / "m.png"), *common], capsys)
    assert code == 0 and (tmp_path / "m.png").stat().st_size > 10_000, err
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["oa"] += 1.0  # an edited metrics file is reported
    (run / "metrics.json").write_text(json.dumps(metrics))
    code, out, err = run_cli(["evaluate", str(run), *common], capsys)
    assert code == 1 and "metrics differ" in err
    code, out, err = run_cli(["train", "--config", "svm", "--epochs", "3", "--out", str(tmp_path / "x"), *common],
                             capsys)
    assert code == 1 and "no settings to override" in err and not (tmp_path / "x").exists()


def test_a_bad_train_out_fails_before_the_data_is_read(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    missing = ["--data-dir", str(tmp_path / "no-data"), "--quiet"]  # reading the scene would fail: it is not read
    code, _, err = run_cli(["train", "--out", str(tmp_path / "file"), *missing], capsys)
    assert code == 1 and "is a file, not a folder" in err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    code, _, err = run_cli(["train", "--out", str(tmp_path / "full"), *missing], capsys)
    assert code == 1 and "exists and is not empty" in err


def test_models_lists_every_system_and_recipe(capsys):
    code, out, _ = run_cli(["models"], capsys)
    assert code == 0
    listed = {line.split("│")[1].strip() for line in out.splitlines() if line.count("│") >= 3}
    assert set(hsiclip.list_models()) <= listed


def test_info_prints_parameter_counts(capsys):
    code, out, _ = run_cli(["info", "--encoder", "bge-large-en-v1.5", "--projection", "text"], capsys)
    assert code == 0
    assert "65,600" in out and "335,141,888" in out


def scenes_found_in(args, capsys) -> dict[str, str]:
    """`hsiclip scenes`: name -> its "found in" cell (first line)."""
    code, out, _ = run_cli(["scenes", *args], capsys)
    assert code == 0
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")]
    return {c[0]: c[4] for c in cells if c[0]}


def test_scenes_lists_where_each_scene_is_found(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HSICLIP_CACHE_DIR", str(tmp_path / "cache"))
    found = scenes_found_in(["--data-dir", str(data_dir)], capsys)
    assert str(data_dir).startswith(found["indian_pines"].rstrip("…"))
    assert found["salinas"] == "-"  # only its ground truth is there, not the cube
    assert scenes_found_in(["--data-dir", str(tmp_path)], capsys)["indian_pines"].startswith("TensorLy")


def write_ip(folder: Path, data_dir: Path, cube=None, gt=None, cube_key="indian_pines_corrected"):
    folder.mkdir(parents=True, exist_ok=True)
    if cube is None:
        shutil.copy(data_dir / "Indian_pines_corrected.mat", folder)
    else:
        scipy.io.savemat(folder / "Indian_pines_corrected.mat", {cube_key: cube})
    if gt is None:
        shutil.copy(data_dir / "Indian_pines_gt.mat", folder)
    else:
        scipy.io.savemat(folder / "Indian_pines_gt.mat", {"indian_pines_gt": gt})


def real_gt(data_dir):
    return scipy.io.loadmat(data_dir / "Indian_pines_gt.mat")["indian_pines_gt"]


def bad_cases(data_dir: Path, folder: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (extra CLI arguments, a phrase the one-line error must contain); writes the bad files."""
    cases = {}
    rng = np.random.default_rng(0)
    small = rng.integers(900, 9000, (145, 145, 200)).astype(np.uint16)

    d = folder / "corrupt"
    write_ip(d, data_dir)
    (d / "Indian_pines_corrected.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(300))
    cases["corrupt"] = (["--data-dir", str(d)], "Indian_pines_corrected.mat")

    d = folder / "truncated"
    write_ip(d, data_dir)
    raw = (data_dir / "Indian_pines_corrected.mat").read_bytes()
    (d / "Indian_pines_corrected.mat").write_bytes(raw[: len(raw) // 3])
    cases["truncated"] = (["--data-dir", str(d)], "Indian_pines_corrected.mat")

    d = folder / "wrong_var"
    write_ip(d, data_dir, cube=small, cube_key="cube")
    cases["wrong variable"] = (["--data-dir", str(d)], "cube")

    d = folder / "size"
    write_ip(d, data_dir, cube=small, gt=np.zeros((140, 145), np.uint8))
    cases["size mismatch"] = (["--data-dir", str(d), "--no-verify"], "145")

    d = folder / "nan"
    nan = small.astype(np.float32)
    nan[3, 4, 5] = np.nan
    nan[7, 8, 9] = np.inf
    write_ip(d, data_dir, cube=nan)
    cases["nan"] = (["--data-dir", str(d), "--no-verify"], "NaN")

    d = folder / "labels"
    gt = real_gt(data_dir).copy()
    gt[0, 0] = 17
    write_ip(d, data_dir, gt=gt)
    cases["labels beyond classes"] = (["--data-dir", str(d), "--no-verify"], "17")

    d = folder / "too_few"
    gt = real_gt(data_dir).copy()
    gt[(gt == 9) & (np.cumsum(gt == 9).reshape(gt.shape) > 1)] = 0  # Oats keeps a single pixel
    write_ip(d, data_dir, gt=gt)
    cases["too few pixels"] = (["--data-dir", str(d), "--no-verify"], "Oats")

    d = folder / "checksum"
    write_ip(d, data_dir, cube=small)
    cases["checksum"] = (["--data-dir", str(d)], "--no-verify")

    cases["unknown scene"] = (["--scene", "atlantis", "--data-dir", str(data_dir)], "valid names")
    cases["unknown encoder"] = (["--data-dir", str(data_dir), "--encoder", "nobody/nothing"], "not available locally")
    cases["unknown system"] = (["--data-dir", str(data_dir), "--config", "resnet"], "unknown system 'resnet'")
    removed = folder / "removed.toml"
    removed.write_text('[train]\ntta = true\n')
    cases["removed option"] = (["--data-dir", str(data_dir), "--config", str(removed)], "train.tta")
    missing = folder / "missing.toml"
    cases["missing recipe file"] = (["--data-dir", str(data_dir), "--config", str(missing)], "unknown system")
    cases["override of a missing field"] = (["--data-dir", str(data_dir), "--config", "cnn2d", "--encoder", "stub"],
                                            "overrides of epochs, batch_size and lr only")
    return cases


def test_bad_input_gives_one_clear_line_and_no_run_folder(data_dir, tmp_path, capsys, monkeypatch, text_cache):
    monkeypatch.setenv("HSICLIP_CACHE_DIR", str(text_cache))
    for name, (args, phrase) in bad_cases(data_dir, tmp_path / "inputs").items():
        out = tmp_path / "runs" / name.replace(" ", "_")
        code, _, err = run_cli(["train", "--epochs", "1", "--quiet", "--no-map", "--out", str(out), *args], capsys)
        assert code == 1, (name, err)
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), (name, err)
        assert phrase in lines[0], (name, lines[0])
        assert "Traceback" not in err
        assert not out.exists(), name
    assert not any((tmp_path / "runs").glob(".*")) if (tmp_path / "runs").exists() else True


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(Exception, match="atlantis"):
        main(["--debug", "train", "--scene", "atlantis"])


def test_the_removed_context_option_is_gone(capsys):
    code, _, err = run_cli(["train", "--context", "4", "--scene", "atlantis"], capsys)
    assert code == 2 and "--context" in err


def test_not_found_names_the_places_searched(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HSICLIP_CACHE_DIR", str(tmp_path / "cache"))
    code, _, err = run_cli(["train", "--scene", "pavia_university", "--data-dir", str(tmp_path)], capsys)
    assert code == 1
    assert str(tmp_path) in err and "--download" in err and "HSICLIP_DATA_DIR" in err


@pytest.mark.slow
def test_pavia_university_code_path_on_a_synthetic_cube(tmp_path, capsys, monkeypatch, text_cache):
    """The PaviaU cube is not available here: a synthetic one of the same shape (610 x 340 x 103) and class count."""
    monkeypatch.setenv("HSICLIP_CACHE_DIR", str(text_cache))
    rng = np.random.default_rng(0)
    gt = np.zeros((610, 340), np.uint8)
    for c in range(1, 10):  # 30 labelled pixels per class keep the test short; the cube is full size
        rows, cols = rng.integers(0, 610, 30), rng.integers(0, 340, 30)
        gt[rows, cols] = c
    means = rng.integers(500, 6000, size=(10, 103))
    cube = (means[gt] + rng.integers(0, 200, size=(610, 340, 103))).astype(np.uint16)
    data = tmp_path / "data"
    data.mkdir()
    scipy.io.savemat(data / "PaviaU.mat", {"paviaU": cube})
    scipy.io.savemat(data / "PaviaU_gt.mat", {"paviaU_gt": gt})
    run = tmp_path / "pu"
    args = ["--data-dir", str(data), "--no-verify", "--quiet"]
    code, out, err = run_cli(["train", "--scene", "pavia_university", "--epochs", "2", "--no-map", "--out", str(run),
                              *args], capsys)
    assert code == 0, err
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["name"], cfg["train"]["batch_size"], cfg["data"]["scene"]) == ("paper_pavia_university", 128,
                                                                               "pavia_university")
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["per_class"]) == 9 and metrics["n_train"] + metrics["n_test"] == int((gt > 0).sum())
    code, out, err = run_cli(["evaluate", str(run), *args], capsys)
    assert code == 0 and "identical" in out, err


def test_the_cli_runs_torch_on_one_thread_unless_told(monkeypatch):
    import torch

    from hsiclip.cli import main

    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n))
    calls: list[int] = []
    assert main(["compare", "--list"]) == 0
    assert main(["--threads", "0", "compare", "--list"]) == 0
    assert main(["--threads", "3", "compare", "--list"]) == 0
    assert calls == [1, os.cpu_count(), 3]


def test_help_shows_flags_and_repeatable_options_as_a_user_reads_them(capsys):
    for command in ("train", "evaluate", "map", "predict", "export", "compare", "reproduce", "info", "models",
                    "scenes"):
        code, out, _ = run_cli([command, "--help"], capsys)
        assert code == 0 and "Usage" in out, command
        assert "<bool>" not in out and "<list[" not in out, (command, out)
    assert "NAME=N" in run_cli(["compare", "--help"], capsys)[1]
