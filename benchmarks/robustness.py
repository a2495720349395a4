"""Bad inputs and interruptions, tried through the real command line: results/robustness.md.

    python benchmarks/robustness.py --out results/robustness.md

Each case builds its input on a small synthetic scene (a 24 x 24 x 30 cube with three classes in stripes, written
as .npy/.mat files with a class file; nothing real is needed), runs one `hsiclip` command and records what came
out: the exit status (2 for a usage error, 1 for bad input, 130 for an interrupt), whether stderr was one `error:`
line without a traceback, and whether an output or staging folder was left behind. The in-process cases are
`hsiclip.cli.main(argv)`; the interrupt cases (SIGINT during training and during predict, SIGKILL then a rerun) run
`python -m hsiclip` as a child process. tests/test_robustness.py runs the same cases (the interrupt ones in the slow
tier), so the table and the tests cannot drift apart.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io

CLASSES = '[[classes]]\nlabel = 1\nname = "Corn"\n[[classes]]\nlabel = 2\nname = "Asphalt"\n' \
          '[[classes]]\nlabel = 3\nname = "Water"\n'


@dataclass
class Case:
    """One command on one prepared input and what must come out of it."""

    name: str
    argv: list[str]
    code: int  # the exit status it must give
    phrase: str  # the error line must contain it (usage errors: typer's own line)
    out: Path | None = None  # the output folder that must not be left behind
    kind: str = "bad input"


@dataclass
class Outcome:
    case: str
    kind: str
    code: int
    expected: int
    line: str  # the last line of stderr
    one_line: bool  # exactly one non-empty stderr line (usage errors: no traceback)
    traceback: bool
    leftovers: list[str] = field(default_factory=list)
    phrase_found: bool = True
    note: str = ""

    @property
    def ok(self) -> bool:
        return (self.code == self.expected and self.one_line and not self.traceback and not self.leftovers
                and self.phrase_found)


def tiny_scene(folder: Path, h: int = 24, w: int = 24, bands: int = 30, seed: int = 0) -> dict[str, Path]:
    """A cube (.npy and .mat), its labels (.npy) and a class file: three classes in vertical stripes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = np.zeros((h, w), dtype=np.uint8)
    labels[2:-2, 2:-2] = 1 + (np.arange(w - 4) * 3 // (w - 4))[None, :]
    means = rng.uniform(200, 1000, size=(4, bands))
    cube = (means[labels] + 20 * rng.standard_normal((h, w, bands))).astype(np.float32)
    np.save(folder / "cube.npy", cube)
    np.save(folder / "labels.npy", labels)
    scipy.io.savemat(folder / "cube.mat", {"cube": cube})
    (folder / "classes.toml").write_text(CLASSES)
    return {"cube": folder / "cube.npy", "labels": folder / "labels.npy", "classes": folder / "classes.toml",
            "mat": folder / "cube.mat"}


def leftovers(out: Path | None) -> list[str]:
    """The output folder, if it exists, and any staging folder beside it."""
    if out is None:
        return []
    found = [str(out)] if out.exists() else []
    if out.parent.exists():
        found += [str(p) for p in out.parent.glob(f".{out.name}.*")]
    return found


def run_in_process(case: Case) -> Outcome:
    from hsiclip.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(case.argv)
    return _outcome(case, code, err.getvalue())


def _outcome(case: Case, code: int, err: str, note: str = "") -> Outcome:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    traceback = "Traceback" in err
    if case.code == 1:
        one = len(lines) == 1 and lines[0].startswith("error:")
    elif case.code == 130:
        one = last == "interrupted"
    else:
        one = bool(lines) and not traceback
    return Outcome(case.name, case.kind, code, case.code, last, one, traceback, leftovers(case.out),
                   case.phrase in err, note)


def cases(root: Path) -> list[Case]:
    """Every in-process case, its inputs written under `root` (a trained run included)."""
    from hsiclip.cli import main

    s = tiny_scene(root / "scene")
    own = ["--cube", str(s["cube"]), "--labels", str(s["labels"]), "--classes", str(s["classes"])]
    quick = ["--config", "rf", "--quiet", "--no-map"]
    runs = root / "runs"
    run = runs / "rf"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["train", *own, *quick, "--out", str(run)]) == 0, "the reference run failed to train"

    def write(name: str, data: bytes | str | np.ndarray, key: str | None = None) -> Path:
        p = root / "inputs" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, np.ndarray):
            scipy.io.savemat(p, {key: data}) if p.suffix == ".mat" else np.save(p, data)
        elif isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_text(data)
        return p

    cube = np.load(s["cube"])
    labels = np.load(s["labels"])
    mat = s["mat"].read_bytes()
    out: list[Case] = []

    def train(name: str, args: list[str], phrase: str, code: int = 1, base: list[str] | None = None,
              config: str = "rf") -> None:
        o = runs / name.replace(" ", "_")
        out.append(Case(name, ["train", *(own if base is None else base), "--config", config, *quick[2:], *args,
                               "--out", str(o)], code, phrase, o, "usage error" if code == 2 else "bad input"))

    def own_with(**files: Path) -> list[str]:
        d = {**{k: s[k] for k in ("cube", "labels", "classes")}, **files}
        return ["--cube", str(d["cube"]), "--labels", str(d["labels"]), "--classes", str(d["classes"])]

    # usage errors: typer's message, status 2
    train("seed not a number", ["--seed", "abc"], "--seed", code=2)
    train("unknown option", ["--epoch", "3"], "--epoch", code=2)
    out.append(Case("unknown command", ["trian"], 2, "trian", None, "usage error"))
    out.append(Case("option without its value", ["train", "--seed"], 2, "--seed", None, "usage error"))
    # files that cannot be read
    train("corrupt .mat", ["--cube-key", "cube"], "corrupt",
          base=own_with(cube=write("corrupt.mat", b"MATLAB 5.0 MAT-file" + bytes(300))))
    train("truncated .mat", ["--cube-key", "cube"], "corrupt or truncated",
          base=own_with(cube=write("truncated.mat", mat[: len(mat) // 3])))
    train(".mat without --cube-key", [], "needs the name of the variable", base=own_with(cube=s["mat"]))
    train("wrong .mat variable", ["--cube-key", "cube_data"], "no variable 'cube_data'", base=own_with(cube=s["mat"]))
    train("truncated .npy", [], "corrupt or truncated",
          base=own_with(cube=write("truncated.npy", s["cube"].read_bytes()[:500])))
    train("unsupported file type", [], "unsupported", base=own_with(cube=write("cube.csv", "1,2,3\n")))
    train("missing own files", [], "no such file",
          base=["--cube", str(root / "nope.npy"), "--labels", str(root / "nope2.npy"), "--classes",
                str(root / "nope.toml")])
    train("only some own files", [], "all three of --cube, --labels and --classes",
          base=["--cube", str(s["cube"])])
    # values that make no scene
    nan = cube.copy()
    nan[3, 4, 5], nan[7, 8, 9] = np.nan, np.inf
    train("NaN and Inf in the cube", [], "NaN", base=own_with(cube=write("nan.npy", nan)))
    train("2-D cube", [], "3-D", base=own_with(cube=write("flat2d.npy", cube[..., 0])))
    train("all-zero cube", [], "constant", base=own_with(cube=write("zero.npy", np.zeros_like(cube))))
    train("labels of another size", [], "label raster is 20x24", base=own_with(labels=write("small.npy", labels[:20])))
    beyond = labels.copy()
    beyond[0, 0] = 7
    train("label beyond the classes", [], "7", base=own_with(labels=write("beyond.npy", beyond)))
    fractional = labels.astype(np.float32)
    fractional[2, 2] = 1.5
    train("fractional labels", [], "whole numbers", base=own_with(labels=write("fractional.npy", fractional)))
    one = labels.copy()
    one[(one == 3) & (np.cumsum(one == 3).reshape(one.shape) > 1)] = 0
    train("a class with one pixel", [], "Water", base=own_with(labels=write("one.npy", one)))
    # class files
    train("malformed class file", [], "malformed", base=own_with(classes=write("bad.toml", "[[classes]\nlabel=")))
    train("unknown class-file key", [], "descritpive",
          base=own_with(classes=write("typo.toml", CLASSES.replace('name = "Water"\n',
                                                                   'name = "Water"\ndescritpive = "x"\n'))))
    train("class named twice", [], "more than once",
          base=own_with(classes=write("twice.toml", CLASSES.replace('"Water"', '"Corn"'))))
    train("class labels not 1..C", [], "1..C in order",
          base=own_with(classes=write("order.toml", CLASSES.replace("label = 3", "label = 4"))))
    # requests that cannot be met
    train("unknown system", ["--config", "resnet"], "unknown system 'resnet'")
    train("unknown protocol", ["--protocol", "holdout"], "holdout")
    train("zero epochs", ["--epochs", "0"], "epochs", config="cnn2d")
    train("training share above 1", ["--train-fraction", "1.5"], "between 0 and 1")
    train("CUDA on a CPU machine", ["--device", "cuda"], "CUDA is not available")
    for name, recipe, system, cube_file, phrase in [
        ("window larger than the scene", "[model]\nwindow = 999\n", None, s["cube"], "larger than the 24 x 24"),
        ("more PCA components than bands", None, "ssftt", write("bands20.npy", cube[..., :20]), "components"),
    ]:
        o = runs / name.replace(" ", "_")
        config = str(write(f"{o.name}.toml", recipe)) if recipe else system
        out.append(Case(name, ["train", *own_with(cube=cube_file), "--config", str(config), "--epochs", "1",
                               "--quiet", "--no-map", "--out", str(o)], 1, phrase, o))
    (root / "file").write_text("x")
    out.append(Case("--out is a file", ["train", *own, *quick, "--out", str(root / "file")], 1,
                    "is a file, not a folder", None))
    (runs / "full").mkdir(parents=True)
    (runs / "full" / "x").write_text("x")
    out.append(Case("--out exists and is not empty", ["train", *own, *quick, "--out", str(runs / "full")], 1,
                    "exists and is not empty", None))
    # evaluate and predict
    out.append(Case("evaluate a folder that is no run", ["evaluate", str(root / "scene")], 1, "not a run folder"))
    pred = root / "predictions"
    for name, args, phrase in [
        ("predict --batch-size 0", ["--batch-size", "0"], "--batch-size must be positive"),
        ("predict --batch-size -3", ["--batch-size", "-3"], "--batch-size must be positive"),
        ("predict --compile maybe", ["--compile", "maybe"], "--compile must be auto, yes or no"),
        ("predict --executor slurm", ["--executor", "slurm"], "--executor must be local or ray"),
    ]:
        o = pred / name.split()[1].strip("-")
        out.append(Case(name, ["predict", str(run), str(s["cube"]), *args, "--out", str(o), "--quiet"], 1, phrase,
                        o))
    o = pred / "bands"
    out.append(Case("predict a cube of other bands", ["predict", str(run), str(root / "inputs" / "bands20.npy"),
                                                       "--out", str(o), "--quiet"], 1, "20 bands", o))
    o = pred / "missing"
    out.append(Case("predict a missing cube", ["predict", str(run), str(root / "nope.npy"), "--out", str(o),
                                               "--quiet"], 1, "no such file", o))
    out.append(Case("predict into a file", ["predict", str(run), str(s["cube"]), "--out", str(root / "file"),
                                            "--quiet"], 1, "is a file, not a folder", None))
    out.append(Case("evaluate a run whose files moved", ["evaluate", str(_moved_run(root, s)), "--quiet"], 1,
                    "no longer there", None))
    o = root / "cmp"
    out.append(Case("compare --window 999", ["compare", "--scene", "indian_pines", "--models", "svm", "--protocol",
                                             "leakfree", "--window", "999", "--work-dir", str(o), "--out",
                                             str(root / "cmp_tables"), "--quiet"], 1, "999", o))
    return out


def _moved_run(root: Path, s: dict[str, Path]) -> Path:
    """A run trained on a copy of the scene that is then deleted."""
    import shutil

    from hsiclip.cli import main

    copy = root / "copy"
    copy.mkdir()
    files = {k: Path(shutil.copy(s[k], copy)) for k in ("cube", "labels", "classes")}
    run = root / "runs" / "moved"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["train", "--cube", str(files["cube"]), "--labels", str(files["labels"]), "--classes",
                     str(files["classes"]), "--config", "rf", "--quiet", "--no-map", "--out", str(run)]) == 0
    shutil.rmtree(copy)
    return run


# --- interrupts: a real child process -------------------------------------------------------------------------------

def _child(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    # a command started with `&` by a non-interactive shell (CI) ignores SIGINT, and so would this child: a user's
    # Ctrl-C reaches a foreground process, so the child gets the default disposition back
    return subprocess.Popen([sys.executable, "-m", "hsiclip", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    """(status, stderr, note) of a signalled child; one that ignores the signal is killed after `timeout` s."""
    try:
        err = proc.communicate(timeout=timeout)[1]
        return proc.returncode, err, ""
    except subprocess.TimeoutExpired:
        proc.kill()
        err = proc.communicate()[1]
        return proc.returncode, err, f"the signal was not honoured within {timeout:.0f} s (killed)"


def _wait_for(cond: Callable[[], bool], proc: subprocess.Popen, timeout: float) -> bool:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def _predict_setup(root: Path, side: int = 600) -> tuple[Path, Path]:
    """A 2D-CNN run on the tiny scene (one epoch) and a large cube of the same bands to predict slowly."""
    from hsiclip.cli import main

    s = tiny_scene(root / "scene")
    run = root / "runs" / "cnn2d"
    if not run.exists():
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["train", "--cube", str(s["cube"]), "--labels", str(s["labels"]), "--classes",
                         str(s["classes"]), "--config", "cnn2d", "--epochs", "1", "--quiet", "--no-map", "--out",
                         str(run)]) == 0
    big = root / f"big{side}.npy"
    if not big.exists():
        cube = np.load(s["cube"])
        np.save(big, np.tile(cube, (side // cube.shape[0], side // cube.shape[1], 1)))
    return run, big


def interrupt_train(root: Path) -> Outcome:
    """SIGINT to `hsiclip train` while it trains (a 5000-epoch SSFTT run)."""
    s = tiny_scene(root / "scene")
    out = root / "runs" / "interrupted"
    case = Case("Ctrl-C during train", ["train"], 130, "interrupted", out, "interrupt")
    proc = _child(["train", "--cube", str(s["cube"]), "--labels", str(s["labels"]), "--classes", str(s["classes"]),
                   "--config", "ssftt", "--epochs", "5000", "--quiet", "--no-map", "--out", str(out)])
    time.sleep(15)  # loaded and training: 5000 epochs take far longer
    running = proc.poll() is None
    proc.send_signal(signal.SIGINT)
    code, err, late = _finish(proc)
    return _outcome(case, code, err, late or ("" if running else "finished before the signal"))


def interrupt_predict(root: Path) -> Outcome:
    """SIGINT to `hsiclip predict` (compiled, as large scenes are) once its staging folder holds the first
    outputs."""
    run, big = _predict_setup(root)
    out = root / "predictions" / "interrupted"
    out.parent.mkdir(parents=True, exist_ok=True)
    case = Case("Ctrl-C during predict", ["predict"], 130, "interrupted", out, "interrupt")
    proc = _child(["predict", str(run), str(big), "--out", str(out), "--tile", "64", "--compile", "yes", "--quiet"])
    started = _wait_for(lambda: any(out.parent.glob(f".{out.name}.hsiclip-*/classes.tif")), proc, 120)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    code, err, late = _finish(proc)
    return _outcome(case, code, err, late or ("" if started else "finished or failed before the signal"))


def kill_and_rerun_predict(root: Path) -> Outcome:
    """SIGKILL during `hsiclip predict` leaves its staging folder; the same command run again removes it and writes
    the same map as an uninterrupted prediction (`Run.predict` in this process)."""
    from hsiclip import load_run

    run, big = _predict_setup(root, side=240)
    out = root / "predictions" / "killed"
    out.parent.mkdir(parents=True, exist_ok=True)
    args = ["predict", str(run), str(big), "--out", str(out), "--tile", "64", "--compile", "no", "--quiet"]
    proc = _child(args)
    staged = _wait_for(lambda: any(out.parent.glob(f".{out.name}.hsiclip-*/classes.tif")), proc, 120)
    proc.kill()
    proc.wait()
    stale = [p.name for p in out.parent.glob(f".{out.name}.hsiclip-*")]
    again = subprocess.run([sys.executable, "-m", "hsiclip", *args], capture_output=True, text=True)
    left = [str(p) for p in out.parent.glob(f".{out.name}.*")]
    same = again.returncode == 0 and np.array_equal(np.load(out / "classes.npy"),
                                                    load_run(run).predict(np.load(big))[0])
    note = (f"killed with {len(stale)} staging folder(s) left; rerun exit {again.returncode}, "
            f"{'the same map as an uninterrupted run' if same else 'a DIFFERENT map'}")
    ok_line = "" if staged and stale and same else "not shown"
    return Outcome("SIGKILL during predict, then the same command", "interrupt", again.returncode, 0,
                   ok_line or "(rerun finished)", True, "Traceback" in again.stderr, left, bool(same and stale), note)


INTERRUPTS = (interrupt_train, interrupt_predict, kill_and_rerun_predict)


def table(outcomes: list[Outcome], command: str) -> str:
    n_ok = sum(o.ok for o in outcomes)
    lines = [
        "# Robustness: bad inputs and interruptions through the command line", "",
        f"Produced by `{command}` on {time.strftime('%Y-%m-%d')}, on a synthetic 24 x 24 x 30 scene (three classes) "
        "written as .npy/.mat files with a class file, and a random-forest run trained on it (a 2D-CNN run and a "
        "600 x 600 (Ctrl-C, compiled) or 240 x 240 (SIGKILL) tiling of the cube for the predict interrupts). "
        "The same cases run in tests/test_robustness.py. "
        "A case passes when the exit status is the expected one (2 usage error, 1 bad input, 130 interrupt), stderr "
        "is one `error:` line (an interrupt: ends with `interrupted`; a usage error: typer's message) without a "
        "traceback, and no output or staging folder is left.", "",
        f"**{n_ok} of {len(outcomes)} cases pass.**", "",
        "| case | kind | exit (expected) | one line, no traceback | left behind | passes | message / note |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for o in outcomes:
        msg = (o.note or o.line).replace("|", "\\|")
        if len(msg) > 150:
            msg = msg[:147] + "..."
        clean = "yes" if o.one_line and not o.traceback else "NO"
        left = ", ".join(Path(x).name for x in o.leftovers) or "-"
        lines.append(f"| {o.case} | {o.kind} | {o.code} ({o.expected}) | {clean} | {left} | "
                     f"{'yes' if o.ok else 'NO'} | {msg} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/robustness.md"))
    ap.add_argument("--no-interrupts", action="store_true", help="Skip the three child-process cases (~1 minute).")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ.setdefault("HSICLIP_CACHE_DIR", str(root / "cache"))
        outcomes = [run_in_process(c) for c in cases(root / "cases")]
        if not args.no_interrupts:
            outcomes += [f(root / "interrupts") for f in INTERRUPTS]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table(outcomes, "python " + " ".join(["benchmarks/robustness.py", *sys.argv[1:]])))
    print(f"{sum(o.ok for o in outcomes)} of {len(outcomes)} cases pass; wrote {args.out}")
    for o in outcomes:
        if not o.ok:
            print(f"  FAILS: {o.case}: exit {o.code} (expected {o.expected}): {o.line} {o.leftovers or ''}")


if __name__ == "__main__":
    main()
