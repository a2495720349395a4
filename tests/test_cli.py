"""End to end: the library on a tiny synthetic scene, the command line on the real Indian Pines, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from hsiclip.cli import main
from hsiclip.config import load_config
from hsiclip.run import evaluate_run, load_run, predict_scene, train_run


def test_train_evaluate_predict_on_tiny_scene(tiny_scene, tiny_prompts, text_cache, tmp_path):
    cfg = load_config().replace(**{"data.scene": "tiny", "data.pca_components": 5, "model.window": 9,
                                   "train.epochs": 15, "data.train_fraction": 0.2})
    metrics = train_run(cfg, tiny_scene, tmp_path / "run", cache_dir=text_cache, prompt_file=tiny_prompts,
                        progress=False, with_map=True)
    assert metrics["oa"] > 80, metrics  # three well-separated spectra: far above chance (33%)
    assert set(metrics) >= {"oa", "aa", "kappa", "per_class", "confusion"}
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert files == {"config.json", "split.npz", "checkpoint.pt", "metrics.json", "history.json", "map.png"}
    run = load_run(tmp_path / "run")
    again = evaluate_run(run, tiny_scene, progress=False)
    assert all(again[k] == metrics[k] for k in ("oa", "aa", "kappa", "per_class", "confusion"))
    pred, conf = predict_scene(run, tiny_scene.cube, progress=False)
    assert pred.shape == tiny_scene.labels.shape and pred.min() >= 1 and pred.max() <= 3
    assert ((conf > 0) & (conf <= 1)).all()


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
@pytest.mark.parametrize("windows", [(), (7, 5)], ids=["same-window", "multiscale"])
def test_an_ensemble_run_reloads_evaluates_and_predicts(tiny_scene, tiny_prompts, text_cache, tmp_path, windows):
    from hsiclip.data.rasters import CubeSource
    from hsiclip.models import HSIClipEnsemble
    from hsiclip.predict import predict_cube

    cfg = load_config("flagship_indian_pines").replace(**{
        "data.scene": "tiny", "data.pca_components": 5, "model.window": 7, "model.members": 2, "train.epochs": 2,
        "train.warmup_epochs": 1, "data.train_fraction": 0.2, "model.member_windows": windows})
    metrics = train_run(cfg, tiny_scene, tmp_path / "run", cache_dir=text_cache, prompt_file=tiny_prompts,
                        progress=False)
    run = load_run(tmp_path / "run")
    assert isinstance(run.model, HSIClipEnsemble)
    again = evaluate_run(run, tiny_scene, progress=False)
    assert all(again[k] == metrics[k] for k in ("oa", "kappa", "confusion"))
    whole, conf = predict_scene(run, tiny_scene.cube, progress=False)
    np.save(tmp_path / "cube.npy", tiny_scene.cube)
    summary = predict_cube(run, CubeSource(tmp_path / "cube.npy"), tmp_path / "pred", tile=8, progress=False,
                           compile="no")
    assert summary["stem_per_tile"]  # each member's stem once per tile, not once per window
    np.testing.assert_array_equal(np.load(tmp_path / "pred" / "classes.npy"), whole)
    np.testing.assert_allclose(np.load(tmp_path / "pred" / "confidence.npy"), conf, rtol=1e-4)


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


def test_info_prints_parameter_counts(capsys):
    code, out, _ = run_cli(["info", "--encoder", "bge-large-en-v1.5", "--projection", "text"], capsys)
    assert code == 0
    assert "65,600" in out and "335,141,888" in out


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
    model_cfg = folder / "model.toml"
    model_cfg.write_text('[model]\nname = "resnet"\n')
    cases["unknown model"] = (["--data-dir", str(data_dir), "--config", str(model_cfg)], "unknown model")
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


def test_not_found_names_the_places_searched(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HSICLIP_CACHE_DIR", str(tmp_path / "cache"))
    code, _, err = run_cli(["train", "--scene", "pavia_university", "--data-dir", str(tmp_path)], capsys)
    assert code == 1
    assert str(tmp_path) in err and "--download" in err and "HSICLIP_DATA_DIR" in err


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
