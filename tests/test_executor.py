"""Mid-run checkpoints (bit-exact resume) and the Ray executor (the same records, tables and maps as one process)."""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
import torch
from conftest import REPO, make_tiny_scene

import hsiclip
from hsiclip import engine, executor
from hsiclip.data.rasters import ArraySource
from hsiclip.errors import ConfigError
from hsiclip.experiments import runner
from hsiclip.experiments.compare import run_comparison
from hsiclip.predict import predict_cube

METRICS = ("oa", "aa", "kappa", "per_class", "confusion", "trainable_params", "flops", "n_train", "n_test", "recipe",
           "epochs")


class Killed(Exception):
    pass


def _kill_after(monkeypatch, epoch: int) -> None:
    """Make the training loop die right after it has written the checkpoint of `epoch`."""
    save = engine.Checkpoint.save

    def dying(self, e, *args, **kwargs):
        save(self, e, *args, **kwargs)
        if e == epoch:
            raise Killed

    monkeypatch.setattr(engine.Checkpoint, "save", dying)


@pytest.mark.parametrize("system", ["tiny", "forward_forward", "cnn2d"])
def test_a_killed_run_resumes_from_its_checkpoint_bit_for_bit(system, tiny_recipe, tiny_scene, tmp_path, monkeypatch):
    scene = tiny_scene
    name = str(tiny_recipe) if system == "tiny" else system
    kw = {"seed": 1, "epochs": 7, "progress": False, "fraction": 0.3}
    if system == "forward_forward":
        kw["epochs"] = 6
    whole = hsiclip.train(scene, name, **kw)
    ckpt = tmp_path / "run.ckpt.pt"
    with monkeypatch.context() as m:
        _kill_after(m, 4)
        with pytest.raises(Killed):
            hsiclip.train(scene, name, checkpoint=ckpt, checkpoint_every=2, **kw)
    assert torch.load(ckpt, weights_only=False)["epoch"] == 4
    torch.manual_seed(123)  # whatever the global RNG holds now, the checkpoint restores the loop's
    resumed = hsiclip.train(scene, name, checkpoint=ckpt, checkpoint_every=2, **kw)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]
    assert len(resumed.history) == kw["epochs"]
    for key in ("oa", "kappa", "per_class", "confusion"):
        assert resumed.record[key] == whole.record[key]
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_of_another_recipe_is_ignored(tiny_recipe, tiny_scene, tmp_path, monkeypatch):
    scene = tiny_scene
    ckpt = tmp_path / "run.ckpt.pt"
    with monkeypatch.context() as m:
        _kill_after(m, 2)
        with pytest.raises(Killed):
            hsiclip.train(scene, str(tiny_recipe), epochs=4, progress=False, checkpoint=ckpt, checkpoint_every=2)
    whole = hsiclip.train(scene, str(tiny_recipe), epochs=4, lr=2e-3, progress=False)
    other = hsiclip.train(scene, str(tiny_recipe), epochs=4, lr=2e-3, progress=False, checkpoint=ckpt,
                          checkpoint_every=2)  # another lr: starts from epoch 0
    assert [h["loss"] for h in other.history] == [h["loss"] for h in whole.history]


def test_a_comparison_resumes_a_killed_pair_and_removes_its_checkpoint(tmp_path, monkeypatch):
    scene = make_tiny_scene(bands=32)
    kw = {"fraction": 0.2, "epochs": {"cnn2d": 6}, "work_dir": tmp_path, "progress": False, "log": lambda m: None,
          "executor": "local"}
    monkeypatch.setattr(runner, "CHECKPOINT_EVERY", 2)
    with monkeypatch.context() as m:
        _kill_after(m, 4)
        with pytest.raises(Killed):
            run_comparison(scene, ["cnn2d"], [0], **kw)
    (ckpt,) = tmp_path.rglob("*.ckpt.pt")
    resumed_after = []
    real = engine.Checkpoint.restore

    def spy(self, *a, **k):
        done = real(self, *a, **k)
        resumed_after.append(done[0])
        return done

    monkeypatch.setattr(engine.Checkpoint, "restore", spy)
    (rec,) = run_comparison(scene, ["cnn2d"], [0], **kw)
    assert not ckpt.exists() and resumed_after == [4]  # epochs 5 and 6 only, then the checkpoint is gone
    (fresh,) = run_comparison(scene, ["cnn2d"], [0], **{**kw, "work_dir": tmp_path / "fresh"})
    assert {k: rec[k] for k in METRICS} == {k: fresh[k] for k in METRICS}


def test_executor_names_are_checked():
    with pytest.raises(ConfigError, match="--executor must be one of"):
        executor.resolve_executor("dask", 3)
    assert executor.resolve_executor("auto", 1) == "local"
    assert executor.resolve_executor("local", 5) == "local"


# --- Ray: a local cluster ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray():
    """A local two-CPU cluster whose workers shrink our recipes and know the stub encoder, like this process."""
    ray = pytest.importorskip("ray")
    from conftest import ray_worker_setup

    path = os.pathsep.join([str(REPO / "tests"), str(REPO / "src")])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}, "worker_process_setup_hook": ray_worker_setup})
    yield ray
    ray.shutdown()


def test_a_comparison_on_ray_writes_the_records_of_a_sequential_run(local_ray, small_recipes, tiny_scene, tmp_path):
    scene = tiny_scene
    names = ["svm", "rf", "ours"]
    logs: list[str] = []
    kw = {"fraction": 0.2, "epochs": {"ours": 2}, "progress": False}
    local = run_comparison(scene, names, [0, 1], work_dir=tmp_path / "local", executor="local", log=lambda m: None,
                           **kw)
    on_ray = run_comparison(scene, names, [0, 1], work_dir=tmp_path / "ray", executor="ray", log=logs.append, **kw)
    assert [(r["model"], r["seed"]) for r in on_ray] == [(r["model"], r["seed"]) for r in local]
    for a, b in zip(local, on_ray, strict=True):
        assert {k: a.get(k) for k in METRICS} == {k: b.get(k) for k in METRICS}, a["model"]
    assert "6 runs on Ray (2 CPUs)" in logs
    # the driver wrote every record and run folder; no checkpoint is left behind
    assert len(list((tmp_path / "ray").rglob("*.json"))) == len(list((tmp_path / "local").rglob("*.json")))
    assert not list((tmp_path / "ray").rglob("*.ckpt.pt"))
    assert all(len(list(p.glob("checkpoint.pt"))) == 1 for p in (tmp_path / "ray").rglob("seed*") if p.is_dir())
    # and a second call finds them all: nothing trains
    again = run_comparison(scene, names, [0, 1], work_dir=tmp_path / "ray", executor="ray", log=logs.append, **kw)
    assert again == on_ray


def test_a_tiled_prediction_on_ray_is_the_single_process_one(local_ray, tiny_recipe, tiny_prompts, tmp_path):
    scene = make_tiny_scene(h=40, w=36)
    scene.prompts = tiny_prompts
    run = hsiclip.train(scene, str(tiny_recipe), epochs=2, progress=False)
    cube = ArraySource(scene.cube)
    one = predict_cube(run, cube, tmp_path / "one", tile=16, progress=False, compile="no")
    many = predict_cube(run, cube, tmp_path / "many", tile=16, progress=False, compile="no", executor="ray")
    assert many["executor"] == "ray" and one["executor"] == "local"
    for name in ("classes.npy", "confidence.npy"):
        assert np.array_equal(np.load(tmp_path / "one" / name), np.load(tmp_path / "many" / name))


# --- Ray: two nodes on loopback ----------------------------------------------------------------------------------
def _node(*args: str, env: dict) -> subprocess.Popen:
    """A Ray node in the foreground (`ray start --block`): SIGTERM stops it and only it, not other Ray clusters
    on this machine (`ray stop` would stop them all)."""
    return subprocess.Popen([shutil.which("ray") or "ray", "start", "--block", "--num-cpus=1",
                             "--node-ip-address=127.0.0.1", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_a_comparison_spreads_over_a_two_node_cluster(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    port = 6390 + os.getpid() % 500
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # loopback only; a real cluster shares a token (docs/scale-out.md)
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit in 107 characters
    nodes = [_node("--head", f"--port={port}", "--include-dashboard=false", "--resources={\"node_a\": 1}",
                   f"--temp-dir={temp}", env=env)]
    try:
        time.sleep(5)
        nodes.append(_node(f"--address=127.0.0.1:{port}", "--resources={\"node_b\": 1}", env=env))
        for _ in range(60):  # the second node registers within a few seconds
            out = subprocess.run([sys.executable, "-c", f"import ray; ray.init(address='127.0.0.1:{port}'); "
                                  "print(len([n for n in ray.nodes() if n['Alive']]))"],
                                 capture_output=True, text=True, env=env, cwd=REPO)
            if out.stdout.strip().endswith("2"):
                break
            time.sleep(1)
        # in a fresh process: in this one, after the local clusters of the tests before, a task's arguments fail
        # with OwnerDiedError (not reproduced in a plain script that does the same: docs/scale-out.md)
        code = ("import sys; sys.path.insert(0, 'tests'); from conftest import make_tiny_scene; "
                "from hsiclip.experiments.compare import run_comparison; "
                "records = run_comparison(make_tiny_scene(bands=32), ['cnn2d'], [0, 1, 2, 3], fraction=0.2, "
                f"epochs={{'cnn2d': 3}}, work_dir={str(tmp_path / 'w')!r}, progress=False, executor='ray', "
                f"address='127.0.0.1:{port}'); print('records', len(records), min(r['oa'] for r in records))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                             timeout=300)
        logs = out.stdout.splitlines()
        assert out.returncode == 0, out.stderr[-2000:]
        n, oa = logs[-1].split()[1:]
        assert n == "4" and float(oa) > 0
        hosts = {line.rsplit("(node ", 1)[1] for line in logs if "(node " in line}
        assert len(hosts) == 2, logs  # the tasks ran on both nodes
        assert "4 runs on Ray (2 CPUs)" in logs
    finally:
        for node in reversed(nodes):
            node.terminate()
        for node in nodes:
            node.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)
    assert not ray.is_initialized()


def test_a_gpu_is_asked_for_the_networks_only():
    job = runner.Job(REPO / "x", "ssftt", 0, "SSFTT, seed 0")
    assert runner._devices(job, "cuda") == ("cuda", 1.0)
    assert runner._devices(job, "cpu") == ("cpu", 0.0)
    assert runner._devices(runner.Job(REPO / "x", "svm", 0, "SVM, seed 0"), "cuda") == ("cpu", 0.0)
