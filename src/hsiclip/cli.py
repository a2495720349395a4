"""Command line: parse, one library call, print; the only module that reads argv (`paths` reads the environment)."""

from __future__ import annotations

import logging
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from rich.console import Console
from rich.table import Table

from .errors import ConfigError, HsiclipError

try:  # typer 0.24 and later carry their own copy of click, whose usage errors are not click's
    from typer._click.exceptions import ClickException as TyperClickException
except ImportError:
    TyperClickException = click.ClickException
USAGE_ERRORS = (click.ClickException, TyperClickException)
if hasattr(getattr(typer, "core", None), "TyperOption") and hasattr(typer.core.TyperOption, "display_type_rich"):
    _display_type = typer.core.TyperOption.display_type_rich

    def _no_type_for_flags(self: Any, ctx: Any) -> str | None:  # typer 0.24+ prints "<bool>" after every flag
        return None if getattr(self, "is_flag", False) and self.metavar is None else _display_type(self, ctx)

    typer.core.TyperOption.display_type_rich = _no_type_for_flags

if TYPE_CHECKING:  # heavy modules are imported inside the commands, so `hsiclip --help` starts fast
    from .data.scenes import Scene
    from .run import Run

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Vision-language hyperspectral image classification with curated text prompts.")
console = Console()
err_console = Console(stderr=True)


class _NoteHandler(logging.Handler):
    """The library's log lines (e.g. a recipe adjusted to a shortened run) as one dim `note:` line on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        err_console.print(f"note: {record.getMessage()}", style="dim", markup=False, highlight=False, soft_wrap=True)
STATE: dict[str, Any] = {"debug": False, "argv": []}

DataDir = Annotated[Path | None, typer.Option(help="Folder with the scene's .mat files (else $HSICLIP_DATA_DIR).")]
Device = Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")]
Download = Annotated[bool, typer.Option("--download", help="Fetch missing scene files (or text encoders).")]
NoVerify = Annotated[bool, typer.Option("--no-verify", help="Skip scene checksum verification.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
RunDir = Annotated[Path, typer.Argument(help="Run folder written by `hsiclip train`.")]
OwnCube = Annotated[Path | None, typer.Option(help="Your own scene: the cube (.mat, .npy, ENVI .hdr/.img, GeoTIFF).")]
OwnLabels = Annotated[Path | None, typer.Option(help="Your own scene: the label raster (0 = unlabelled, 1..C).")]
OwnClasses = Annotated[Path | None, typer.Option(help="Your own scene: class names and descriptions (TOML/YAML); "
                                                      "they become the prompts.")]
CubeKey = Annotated[str | None, typer.Option(help="Variable holding the cube in a .mat file.")]
LabelsKey = Annotated[str | None, typer.Option(help="Variable holding the labels in a .mat file.")]


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto")
    return device


Executor = Annotated[str, typer.Option(
    help="Where the runs train: local (one after the other, here), ray (Ray tasks, one CPU each, on a local "
         "cluster or --address), or auto (ray when more than one run is to train).")]
Address = Annotated[str | None, typer.Option(help="Ray cluster to join (host:port of `ray start --head`, or auto); "
                                                  "default: a local cluster.")]
Workers = Annotated[int | None, typer.Option(help="CPUs of the local Ray cluster (default: one per core).")]


def scene_for(name: str, data_dir: Path | None, download: bool, no_verify: bool, quiet: bool) -> Scene:
    from .api import load_scene

    return load_scene(name, data_dir=data_dir, download=download, verify=not no_verify, progress=not quiet)


def run_and_scene(run: Path, device: str, data_dir: Path | None, download: bool, no_verify: bool, quiet: bool,
                  own: dict[str, Any]) -> tuple[Run, Scene]:
    """A run folder's model and the scene it was trained on (`own`: --cube, --labels, ... where its files moved)."""
    from .api import scene_of
    from .run import load_run

    r = load_run(run, device)
    return r, scene_of(r, data_dir=data_dir, download=download, verify=not no_verify, progress=not quiet, **own)


def print_metrics(metrics: dict[str, Any], class_names: list[str], title: str) -> None:
    _table(title, ("class", "accuracy (%)"),
           [(n, "-" if a is None else f"{a:.2f}") for n, a in zip(class_names, metrics["per_class"], strict=True)])
    console.print(f"[bold]OA {metrics['oa']:.2f}   AA {metrics['aa']:.2f}   kappa {metrics['kappa']:.2f}[/bold]")


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
          threads: Annotated[int, typer.Option(min=0, help="PyTorch intra-op threads; 0: one per core. One is the "
                                               "default: threads that share their cores with other work slow down "
                                               "several-fold; on an idle machine 0 can be faster (the flagship).")] = 1,
          ) -> None:
    STATE["debug"] = debug
    import torch  # here, not at import time: `--help` stays quick

    torch.set_num_threads(threads or os.cpu_count() or 1)


@app.command()
def train(
    scene: Annotated[str | None, typer.Option(help="Registered scene (default: the recipe's).")] = None,
    seed: Annotated[int, typer.Option(help="Seeds the split, the initialisation and the sampling.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Run folder to write (default: runs/<scene>-seed<seed>).")] = None,
    config: Annotated[str | None, typer.Option(help="A recipe file (.toml/.json) or any name of "
                                                    "`hsiclip compare --list` and the built-in recipes.")] = None,
    data_dir: DataDir = None,
    epochs: Annotated[int | None, typer.Option(help="Override the epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Override the batch size.")] = None,
    lr: Annotated[float | None, typer.Option(help="Override the learning rate.")] = None,
    train_fraction: Annotated[float | None, typer.Option(help="Per-class training share of the split.")] = None,
    encoder: Annotated[str | None, typer.Option(help="Text encoder name or sentence-transformers path.")] = None,
    prompts: Annotated[str | None, typer.Option(help="descriptive, short, label or ensemble.")] = None,
    negatives: Annotated[str | None, typer.Option(help="hard+semi, hard, semi or all.")] = None,
    projection: Annotated[str | None, typer.Option(help="text (probe on text side) or vision.")] = None,
    split: Annotated[Path | None, typer.Option(help="Replay the split.npz of an earlier run.")] = None,
    unseen: Annotated[str | None, typer.Option(metavar="CLASSES", help="Zero-shot: comma-separated class names or "
                                               "labels left out of training, scored from their prompts alone.")
                      ] = None,
    per_class: Annotated[int | None, typer.Option(metavar="N", help="Few labels: N training pixels per class of "
                                                  "the protocol's split (its test set kept).")] = None,
    prototypes: Annotated[str, typer.Option(help="text (the prompts' embeddings) or random (unit vectors: the "
                                                 "control for the text prior).")] = "text",
    cube: OwnCube = None,
    labels: OwnLabels = None,
    classes: OwnClasses = None,
    cube_key: CubeKey = None,
    labels_key: LabelsKey = None,
    protocol: Annotated[str, typer.Option(help="paper (random share, PCA on the whole scene), leakfree "
                                               "(spatially disjoint, PCA on training pixels) or crossfield "
                                               "(leak-free, tested on unseen fields).")] = "paper",
    device: Device = "cpu",
    download: Download = False,
    no_verify: NoVerify = False,
    no_map: Annotated[bool, typer.Option("--no-map", help="Do not write map.png.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing run folder.")] = False,
    quiet: Quiet = False,
) -> None:
    """Train a model on a scene, evaluate it on the test pixels, and write a run folder (+ map.png)."""
    from .api import load_scene
    from .data.splits import Split
    from .paths import cache_dir, check_writable
    from .pipeline import train as train_system

    if out is not None:  # before loading anything: a bad --out fails in a second, not after the training
        check_writable(out)
        if out.exists() and any(out.iterdir()) and not overwrite:
            raise ConfigError(f"run folder {out} exists and is not empty; choose another --out or add --overwrite")
    if any(x is not None for x in (cube, labels, classes)):
        if not all(x is not None for x in (cube, labels, classes)):
            raise ConfigError("your own scene needs all three of --cube, --labels and --classes")
        data = load_scene(scene, cube=cube, labels=labels, classes=classes, cube_key=cube_key, labels_key=labels_key)
    else:
        data = scene_for(scene or "indian_pines", data_dir, download, no_verify, quiet)
    out = out or Path("runs") / f"{data.name}-seed{seed}"
    check_writable(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"run folder {out} exists and is not empty; choose another --out or add --overwrite")
    overrides = {k: v for k, v in {"train.batch_size": batch_size, "train.lr": lr, "text.encoder": encoder,
                                   "text.prompts": prompts, "loss.negatives": negatives,
                                   "model.projection": projection}.items() if v is not None}
    dev = resolve_device(device)
    console.print(f"[dim]{config or 'ours'}: {data.name} from {data.source}; device {dev}[/dim]", soft_wrap=True)
    run = train_system(data, config or "ours", seed=seed, protocol=protocol, fraction=train_fraction,
                       split=Split.load(split) if split else None, epochs=epochs, device=dev,
                       progress=not quiet, cache_dir=cache_dir(), allow_download=download, per_class=per_class,
                       unseen=[u.strip() for u in unseen.split(",") if u.strip()] if unseen else (),
                       prototypes=prototypes, **overrides)
    run.save(out)
    if not no_map:
        from .experiments.plots import write_map

        write_map(run, data, out / "map.png", dev, progress=not quiet)
    print_metrics(run.metrics, list(data.class_names), f"{data.name}, seed {seed}: test pixels")
    if zs := run.metrics.get("zero_shot"):
        def pct(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f}"

        _table(f"zero-shot: {', '.join(data.class_names[c] for c in zs['unseen_classes'])} unseen in training",
               ("unseen prototypes", "seen acc", "unseen acc", "H", "ZSL acc"),
               [(k, *(pct(zs[k][m]) for m in ("seen", "unseen", "h", "zsl"))) for k in ("text", "random")])
        console.print(f"chance: {zs['chance_gzsl']:.2f} (every class), {zs['chance_zsl']:.2f} (unseen only)")
    t = run.metrics["timing"]
    console.print(f"train {t['train_s']:.1f} s, test inference {t['infer_s']:.2f} s; run folder {out}"
                  + ("" if no_map else f", map {out / 'map.png'}"))


@app.command()
def evaluate(run: RunDir, data_dir: DataDir = None, device: Device = "cpu", download: Download = False,
             no_verify: NoVerify = False, cube: OwnCube = None, labels: OwnLabels = None, classes: OwnClasses = None,
             cube_key: CubeKey = None, labels_key: LabelsKey = None, quiet: Quiet = False) -> None:
    """Reload a run and recompute its test metrics; fail if they differ from the stored ones."""
    from .run import METRIC_KEYS

    dev = resolve_device(device)
    r, data = run_and_scene(run, dev, data_dir, download, no_verify, quiet, {
        "cube": cube, "labels": labels, "classes": classes, "cube_key": cube_key, "labels_key": labels_key})
    metrics = r.evaluate(data, dev, progress=not quiet)
    print_metrics(metrics, list(r.class_names), f"{run}: test pixels")
    if r.metrics and not all(r.metrics.get(k) == metrics[k] for k in METRIC_KEYS):
        raise HsiclipError(f"metrics differ from {run / 'metrics.json'}: stored OA {r.metrics['oa']:.4f}, "
                           f"now {metrics['oa']:.4f}")
    if r.metrics:
        console.print(f"identical to {run / 'metrics.json'}")


@app.command("map")
def map_(run: RunDir, out: Annotated[Path | None, typer.Option(help="PNG to write (default: RUN/map.png).")] = None,
         data_dir: DataDir = None, device: Device = "cpu", download: Download = False, no_verify: NoVerify = False,
         cube: OwnCube = None, labels: OwnLabels = None, classes: OwnClasses = None, cube_key: CubeKey = None,
         labels_key: LabelsKey = None, quiet: Quiet = False) -> None:
    """Classify every pixel of the run's scene and write the map beside the ground truth as a PNG."""
    from .experiments.plots import write_map

    dev = resolve_device(device)
    r, data = run_and_scene(run, dev, data_dir, download, no_verify, quiet, {
        "cube": cube, "labels": labels, "classes": classes, "cube_key": cube_key, "labels_key": labels_key})
    console.print(f"wrote {write_map(r, data, out or run / 'map.png', dev, progress=not quiet)}")


@app.command(name="predict")
def predict_(
    run: RunDir,
    cube: Annotated[Path, typer.Argument(help="Cube to classify (.mat, .npy, ENVI .hdr/.img, GeoTIFF), any size.")],
    out: Annotated[Path, typer.Option(help="Output folder: classes_map.png (legend, title), classes.{tif,qml,png,npy}, "
                                           "confidence.{tif,npy}.")] = Path(
        "prediction"),
    cube_key: Annotated[str | None, typer.Option(help="Variable holding the cube in a .mat file.")] = None,
    tile: Annotated[int, typer.Option(help="Tile side in pixels (memory is one tile of the cube).")] = 256,
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass.")] = 64,
    compile: Annotated[str, typer.Option(help="Compile the model for the CPU first (10-20 s, then faster): yes, "
                                         "no, or auto (for scenes of 250,000 pixels or more).")] = "auto",
    device: Device = "cpu",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output folder.")] = False,
    executor: Annotated[str, typer.Option(help="Where the tiles are classified: local (this process) or ray (Ray "
                                               "actors holding the model, on a local cluster or --address).")
                        ] = "local",
    address: Address = None, workers: Workers = None, quiet: Quiet = False,
) -> None:
    """Classify every pixel of a cube, tile by tile; the GeoTIFFs keep the cube's georeferencing."""
    from .data.rasters import CubeSource
    from .predict import OUTPUTS, predict_cube
    from .run import load_run

    dev = resolve_device(device)
    s = predict_cube(load_run(run, dev), CubeSource(cube, cube_key), out, tile=tile, batch_size=batch_size,
                     device=dev, progress=not quiet, overwrite=overwrite, compile=compile, executor=executor,
                     address=address, workers=workers)
    console.print(f"{s['pixels']:,} pixels in {s['seconds']:.1f} s ({s['pixels_per_s']:,.0f} px/s); wrote {out}/: "
                  + ", ".join(OUTPUTS)
                  + ("" if s["georeferenced"] else " (the cube has no georeferencing, so neither do the GeoTIFFs)"))


@app.command()
def export(
    scene: Annotated[str, typer.Argument(help="Registered scene.")],
    out: Annotated[Path, typer.Option(help="Folder for SCENE.hdr/.img, SCENE_labels.tif and SCENE_classes.toml.")
                   ] = Path("scene"),
    data_dir: DataDir = None, download: Download = False, no_verify: NoVerify = False, quiet: Quiet = False,
) -> None:
    """Re-package a registered scene as a user would have it: an ENVI cube, GeoTIFF labels and a class file."""
    from .data.rasters import export_scene

    console.print("wrote " + ", ".join(map(str, export_scene(scene_for(scene, data_dir, download, no_verify, quiet),
                                                             out))))


def _parse_epochs(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        if not value.isdigit() or int(value) < 1:
            raise ConfigError(f"--epochs expects NAME=N with N a positive integer, got {item!r}")
        out[name] = int(value)
    return out


def _dim_log(quiet: bool) -> Callable[[str], None]:  # the experiments' progress lines
    return lambda msg: None if quiet else console.print(msg, style="dim", markup=False)


def _parse_seeds(seeds: str) -> list[int]:
    try:
        return [int(s) for s in seeds.split(",")]
    except ValueError:
        raise ConfigError(f"--seeds expects comma-separated integers, got {seeds!r}") from None


@app.command()
def compare(
    scene: Annotated[str, typer.Option(help="Registered scene.")] = "indian_pines",
    models: Annotated[str, typer.Option(help="Comma-separated systems, or 'all' (see `--list`).")] = "all",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds; each seed is one split shared by all.")] = "0",
    protocol: Annotated[str, typer.Option(
        help="How labelled pixels are split: paper (random share), leakfree (spatially disjoint, preprocessing "
             "fitted on training pixels), crossfield (leak-free, tested on fields unseen in training), or several: "
             "paper,leakfree (adds results/protocols.md).")] = "paper",
    fraction: Annotated[float, typer.Option(help="Share of labelled pixels per class used for training.")] = 0.1,
    epochs: Annotated[list[str] | None, typer.Option(metavar="NAME=N", help="Run system NAME for N epochs "
                                                                         "(repeatable).")] = None,
    max_epochs: Annotated[int | None, typer.Option(help="Cap every system's epochs (stated in the table).")] = None,
    window: Annotated[int | None, typer.Option(help="Leak-free protocol: the window no test pixel's window may share "
                                                    "with a training pixel (default 15).")] = None,
    work_dir: Annotated[Path, typer.Option(help="Per-(system, seed) records and runs; resumable.")] = Path(
        "runs/compare"),
    out: Annotated[Path, typer.Option(help="Folder for compare_<scene>.md/.csv/.png.")] = Path("results"),
    note: Annotated[list[str] | None, typer.Option(metavar="TEXT", help="A line added to the table's notes "
                                                                        "(repeatable).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the systems and exit.")] = False,
    no_train: Annotated[bool, typer.Option("--no-train", help="Only tabulate the finished (system, seed) pairs.")
                        ] = False,
    data_dir: DataDir = None, device: Device = "cpu", download: Download = False, no_verify: NoVerify = False,
    executor: Executor = "auto", address: Address = None, workers: Workers = None, quiet: Quiet = False,
) -> None:
    """Train every system on the same splits; write the comparison table, CSV and OA-vs-FLOPs figure."""
    from .data.protocols import PROTOCOLS
    from .executor import resolve_executor
    from .experiments.compare import ALL_SYSTEMS, compare_protocols
    from .paths import cache_dir
    from .systems import get_system

    if list_:
        from .experiments.compare import system_rows

        return _table("comparison systems (`--models all` runs them in this order)",
                      ("name", "row", "kind", f"epochs on {scene}"), system_rows(scene))
    names = list(ALL_SYSTEMS) if models == "all" else [m.strip() for m in models.split(",") if m.strip()]
    for name in names:
        get_system(name)
    protocols = [p.strip() for p in protocol.split(",") if p.strip()]
    for p in protocols:
        PROTOCOLS.get(p)
    seed_list = _parse_seeds(seeds)
    resolve_executor(executor, 0)  # a bad name fails before the data loads
    dev = resolve_device(device)
    data = scene_for(scene, data_dir, download, no_verify, quiet)
    paths = compare_protocols(data, names, seed_list, protocols, fraction=fraction,
                              epochs=_parse_epochs(epochs or []), max_epochs=max_epochs, work_dir=work_dir,
                              out=out, device=dev, cache_dir=cache_dir(), progress=not quiet, log=_dim_log(quiet),
                              train_missing=not no_train, window=window, notes=note or [],
                              command="hsiclip " + shlex.join(STATE["argv"]), executor=executor, address=address,
                              workers=workers)
    console.print("wrote " + ", ".join(str(x) for x in paths))


@app.command()
def reproduce(
    name: Annotated[str | None, typer.Argument(help="Experiment (see --list).")] = None,
    scene: Annotated[str, typer.Option(help="Registered scene.")] = "indian_pines",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds (the paper repeats each experiment 4 times).")
                     ] = "0,1,2,3",
    epochs: Annotated[list[str] | None, typer.Option(metavar="NAME=N", help="Run baseline NAME for N epochs "
                                                                         "(repeatable).")] = None,
    skip: Annotated[list[str] | None, typer.Option(metavar="NAME", help="Leave the rows of this system out "
                                                                       "(repeatable); they "
                                                        "stay in the table as skipped.")] = None,
    work_dir: Annotated[Path, typer.Option(help="Run folders of the recipe variants; resumable.")] = Path(
        "runs/reproduce"),
    compare_dir: Annotated[Path, typer.Option(help="Records shared with `hsiclip compare`.")] = Path("runs/compare"),
    out: Annotated[Path, typer.Option(help="Folder for <name>.md/.csv/.png.")] = Path("results"),
    list_: Annotated[bool, typer.Option("--list", help="List the experiments and exit.")] = False,
    no_train: Annotated[bool, typer.Option("--no-train", help="Only tabulate what is already trained.")] = False,
    data_dir: DataDir = None, device: Device = "cpu", download: Download = False, no_verify: NoVerify = False,
    executor: Executor = "auto", address: Address = None, workers: Workers = None, quiet: Quiet = False,
) -> None:
    """Reproduce one of the paper's tables or figures; results are cached per (config, seed)."""
    from .executor import resolve_executor
    from .experiments.reproduce import EXPERIMENTS, experiment_names
    from .experiments.reproduce import reproduce as run_experiment
    from .paths import cache_dir

    if list_ or name is None:
        _table("experiments (`hsiclip reproduce NAME`)", ("name", "paper", "what"),
               [(n, EXPERIMENTS.get(n).source, EXPERIMENTS.get(n).title) for n in experiment_names()])
        if name is None and not list_:
            raise ConfigError("give an experiment name (listed above)")
        return
    EXPERIMENTS.get(name)
    seed_list = _parse_seeds(seeds)
    resolve_executor(executor, 0)
    dev = resolve_device(device)
    data = scene_for(scene, data_dir, download, no_verify, quiet)
    paths = run_experiment(name, data, seed_list, out_dir=out, work_dir=work_dir, compare_dir=compare_dir,
                           command="hsiclip " + shlex.join(STATE["argv"]), epochs=_parse_epochs(epochs or []),
                           skip=[s.strip() for item in skip or [] for s in item.split(",") if s.strip()],
                           device=dev, cache_dir=cache_dir(), progress=not quiet, train_missing=not no_train,
                           log=_dim_log(quiet), executor=executor, address=address, workers=workers)
    console.print("wrote " + ", ".join(str(p) for p in paths))


@app.command()
def info(
    config: Annotated[str | None, typer.Option(help="Config file or built-in recipe name.")] = None,
    scene: Annotated[str | None, typer.Option(help="Scene (sets the number of classes).")] = None,
    encoder: Annotated[str | None, typer.Option(help="Text encoder (sets the text dimension).")] = None,
    projection: Annotated[str | None, typer.Option(help="text or vision.")] = None,
) -> None:
    """Print trainable / frozen / total parameters and FLOPs per sample of a model."""
    from .config import load_config
    from .efficiency import describe_model

    cfg = load_config(config, scene).replace(**{"text.encoder": encoder, "model.projection": projection})
    rows, note = describe_model(cfg)
    table = Table(title=f"{cfg.name} on {cfg.data.scene}, encoder {cfg.text.encoder}")
    for col in ("part", "parameters", "trainable"):
        table.add_column(col, justify="left" if col == "part" else "right")
    for part, n, trainable in rows:
        table.add_row(part, "?" if n is None else f"{n:,}", trainable)
    console.print(table)
    console.print(note)


@app.command()
def models() -> None:
    """List the systems and built-in recipes that `train --config` and `compare --models` take."""
    from .systems import get_system, list_models

    table = Table(title="systems and recipes (train --config, compare --models)")
    for col in ("name", "row label", "kind"):
        table.add_column(col)
    for name in list_models():
        system = get_system(name)
        table.add_row(name, system.label, system.kind)
    console.print(table)


@app.command()
def scenes(data_dir: DataDir = None) -> None:
    """List the registered scenes and whether their files are found."""
    from .data.scenes import SCENES, get_scene, where_found
    from .paths import data_dirs, download_dir

    dirs = [*data_dirs(data_dir), download_dir()]
    _table("registered scenes", ("name", "title", "size", "classes", "found in"),
           [(n, get_scene(n).title, "x".join(map(str, get_scene(n).shape)), str(len(get_scene(n).class_names)),
             where_found(n, dirs)) for n in SCENES])


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code. Errors print one line unless --debug is given."""
    args = sys.argv[1:] if argv is None else argv
    STATE["debug"] = "--debug" in args
    STATE["argv"] = list(args)
    library_log = logging.getLogger("hsiclip")
    if not library_log.handlers:
        library_log.addHandler(_NoteHandler())
        library_log.setLevel(logging.INFO)
    try:
        code = app(args=args, prog_name="hsiclip", standalone_mode=False)
    except (click.exceptions.Exit, typer.Exit) as e:
        return e.exit_code
    except USAGE_ERRORS as e:
        e.show()
        return e.exit_code
    except (click.exceptions.Abort, typer.Abort):
        err_console.print("aborted")
        return 130
    except (HsiclipError, KeyboardInterrupt) as e:
        if STATE["debug"]:
            raise
        err_console.print(f"[red]error:[/red] {e}" if str(e) else "interrupted", highlight=False, soft_wrap=True)
        return 1
    # typer turns Ctrl-C into the exit code 130 and, outside its standalone mode, returns it (commands return None)
    if isinstance(code, int) and not isinstance(code, bool) and code:
        if code == 130:
            err_console.print("interrupted")
        return code
    return 0



def entry() -> None:
    """The `hsiclip` console script and `python -m hsiclip`: `main`'s status as the process's exit status."""
    code = main()
    if code == 130:
        # A Ctrl-C that reached Python inside TorchInductor's compiled code leaves CPython set to kill itself with
        # SIGINT at exit (status -2, not 130) although it was handled: run the exit handlers, then leave with 130.
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)
