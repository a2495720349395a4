"""Command line: `hsiclip train | evaluate | map | compare | info | scenes`; the only module that reads argv or env."""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from platformdirs import user_cache_dir
from rich.console import Console
from rich.table import Table

from .errors import ConfigError, HsiclipError

if TYPE_CHECKING:  # heavy modules are imported inside the commands, so `hsiclip --help` starts fast
    from .data.scenes import Scene
    from .run import Run

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Vision-language hyperspectral image classification with curated text prompts.")
console = Console()
err_console = Console(stderr=True)
STATE: dict[str, Any] = {"debug": False, "argv": []}

DataDir = Annotated[Path | None, typer.Option(help="Folder with the scene's .mat files (else $HSICLIP_DATA_DIR).")]
Device = Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")]
Download = Annotated[bool, typer.Option("--download", help="Fetch missing scene files (or text encoders).")]
NoVerify = Annotated[bool, typer.Option("--no-verify", help="Skip scene checksum verification.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def cache_dir() -> Path:
    """User cache folder for downloaded scenes and text embeddings [env: HSICLIP_CACHE_DIR]."""
    return Path(os.environ.get("HSICLIP_CACHE_DIR") or user_cache_dir("hsiclip"))


def search_dirs(data_dir: Path | None) -> list[Path]:
    """Lookup order: the option, else the environment variable; the user cache folder comes after them."""
    if data_dir:
        return [data_dir]
    return [Path(os.environ["HSICLIP_DATA_DIR"])] if os.environ.get("HSICLIP_DATA_DIR") else []


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto")
    return device


def load_scene_cli(name: str, data_dir: Path | None, download: bool, no_verify: bool, quiet: bool):
    from .data.scenes import load_scene

    return load_scene(name, search_dirs(data_dir), download_dir=cache_dir() / "data", download=download,
                      verify=not no_verify, progress=not quiet)


def load_run_and_scene(run: Path, device: str, data_dir: Path | None, download: bool, no_verify: bool,
                       quiet: bool) -> tuple[Run, Scene]:
    """A run folder's model and the scene it was trained on."""
    from .run import load_run

    r = load_run(run, device)
    return r, load_scene_cli(r.cfg.data.scene, data_dir, download, no_verify, quiet)


def print_metrics(metrics: dict[str, Any], class_names: list[str], title: str) -> None:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("class")
    table.add_column("accuracy (%)", justify="right")
    for name, acc in zip(class_names, metrics["per_class"], strict=True):
        table.add_row(name, "-" if acc is None else f"{acc:.2f}")
    console.print(table)
    console.print(f"[bold]OA {metrics['oa']:.2f}   AA {metrics['aa']:.2f}   kappa {metrics['kappa']:.2f}[/bold]")


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False) -> None:
    STATE["debug"] = debug


@app.command()
def train(
    scene: Annotated[str | None, typer.Option(help="Registered scene (default: the config's).")] = None,
    seed: Annotated[int, typer.Option(help="Seeds the split, the initialisation and the sampling.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Run folder to write (default: runs/<scene>-seed<seed>).")] = None,
    config: Annotated[str | None, typer.Option(help="Config file (.toml/.json) or built-in recipe name.")] = None,
    data_dir: DataDir = None,
    epochs: Annotated[int | None, typer.Option(help="Override train.epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Override train.batch_size.")] = None,
    lr: Annotated[float | None, typer.Option(help="Override train.lr.")] = None,
    train_fraction: Annotated[float | None, typer.Option(help="Override data.train_fraction.")] = None,
    encoder: Annotated[str | None, typer.Option(help="Text encoder name or sentence-transformers path.")] = None,
    prompts: Annotated[str | None, typer.Option(help="descriptive, short, label or ensemble.")] = None,
    context: Annotated[int | None, typer.Option(help="Learnable context vectors before every prompt, trained "
                                                     "through the frozen encoder (CoOp); 0: prompts as written.")
                       ] = None,
    negatives: Annotated[str | None, typer.Option(help="hard+semi, hard, semi or all.")] = None,
    projection: Annotated[str | None, typer.Option(help="text (probe on text side) or vision.")] = None,
    split: Annotated[Path | None, typer.Option(help="Replay the split.npz of an earlier run.")] = None,
    cube: Annotated[Path | None, typer.Option(help="Your own scene: the cube (.mat, .npy, ENVI .hdr/.img, GeoTIFF)."
                                              )] = None,
    labels: Annotated[Path | None, typer.Option(help="Your own scene: the label raster (0 = unlabelled, 1..C).")
                      ] = None,
    classes: Annotated[Path | None, typer.Option(help="Your own scene: class names and descriptions (TOML/YAML); "
                                                      "they become the prompts.")] = None,
    cube_key: Annotated[str | None, typer.Option(help="Variable holding the cube in a .mat file.")] = None,
    labels_key: Annotated[str | None, typer.Option(help="Variable holding the labels in a .mat file.")] = None,
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
    from .config import load_config
    from .data.splits import Split
    from .run import train_run

    own = [x is not None for x in (cube, labels, classes)]
    if any(own) and not all(own):
        raise ConfigError("your own scene needs all three of --cube, --labels and --classes")
    prompt_file = None
    if all(own):
        from .data.scenes import user_scene
        from .text.prompts import load_prompt_set

        assert cube is not None and labels is not None and classes is not None
        prompt_file = classes
        names = [p.name for p in load_prompt_set(classes)]
        data = user_scene(cube, labels, names, name=scene or cube.stem, cube_key=cube_key, labels_key=labels_key)
        scene = data.name
    from .compare import PROTOCOLS

    proto = PROTOCOLS.get(protocol)
    cfg = load_config(config, scene).replace(**{
        "train.seed": seed, "train.epochs": epochs, "train.batch_size": batch_size, "train.lr": lr,
        "data.train_fraction": train_fraction, "text.encoder": encoder, "text.prompts": prompts,
        "text.context": context, "loss.negatives": negatives, "model.projection": projection,
        "data.pca_fit": "train" if proto.fit_on_train else None})
    dev = resolve_device(device)
    out = out or Path("runs") / f"{cfg.data.scene}-seed{seed}"
    if prompt_file is None:
        data = load_scene_cli(cfg.data.scene, data_dir, download, no_verify, quiet)
    replay = Split.load(split) if split else None
    if replay is None and protocol != "paper":  # the comparison's leak-free split, at this model's window
        replay = proto.split(data, seed, cfg.data.train_fraction, cfg.model.window)
    console.print(f"[dim]{cfg.name}: {cfg.data.scene} from {data.source}; {cfg.train.epochs} epochs, "
                  f"encoder {cfg.text.encoder}, device {dev}[/dim]", soft_wrap=True)
    metrics = train_run(cfg, data, out, device=dev, cache_dir=cache_dir(), split=replay, progress=not quiet,
                        allow_download=download, overwrite=overwrite, with_map=not no_map, prompt_file=prompt_file)
    print_metrics(metrics, list(data.class_names), f"{cfg.data.scene}, seed {seed}: test pixels")
    t = metrics["timing"]
    console.print(f"train {t['train_s']:.1f} s, test inference {t['infer_s']:.2f} s; run folder {out}"
                  + ("" if no_map else f", map {out / 'map.png'}"))


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run folder written by `hsiclip train`.")],
    data_dir: DataDir = None,
    device: Device = "cpu",
    download: Download = False,
    no_verify: NoVerify = False,
    quiet: Quiet = False,
) -> None:
    """Reload a run and recompute its test metrics; fail if they differ from the stored ones."""
    from .run import METRIC_KEYS, evaluate_run

    dev = resolve_device(device)
    r, data = load_run_and_scene(run, dev, data_dir, download, no_verify, quiet)
    metrics = evaluate_run(r, data, dev, progress=not quiet)
    print_metrics(metrics, list(r.class_names), f"{run}: test pixels")
    stored_path = run / "metrics.json"
    if stored_path.is_file():
        stored = json.loads(stored_path.read_text())
        same = all(stored.get(k) == metrics[k] for k in METRIC_KEYS)
        if not same:
            raise HsiclipError(f"metrics differ from {stored_path}: stored OA {stored['oa']:.4f}, "
                               f"now {metrics['oa']:.4f}")
        console.print(f"identical to {stored_path}")


@app.command("map")
def map_(
    run: Annotated[Path, typer.Argument(help="Run folder written by `hsiclip train`.")],
    out: Annotated[Path | None, typer.Option(help="PNG to write (default: RUN/map.png).")] = None,
    data_dir: DataDir = None,
    device: Device = "cpu",
    download: Download = False,
    no_verify: NoVerify = False,
    quiet: Quiet = False,
) -> None:
    """Classify every pixel of the run's scene and write the map beside the ground truth as a PNG."""
    from .run import write_map

    dev = resolve_device(device)
    r, data = load_run_and_scene(run, dev, data_dir, download, no_verify, quiet)
    path = write_map(r, data, out or run / "map.png", dev, progress=not quiet)
    console.print(f"wrote {path}")


@app.command(name="predict")
def predict_(
    run: Annotated[Path, typer.Argument(help="Run folder written by `hsiclip train`.")],
    cube: Annotated[Path, typer.Argument(help="Cube to classify (.mat, .npy, ENVI .hdr/.img, GeoTIFF), any size.")],
    out: Annotated[Path, typer.Option(help="Output folder: classes.{png,tif,npy}, confidence.{tif,npy}.")] = Path(
        "prediction"),
    cube_key: Annotated[str | None, typer.Option(help="Variable holding the cube in a .mat file.")] = None,
    tile: Annotated[int, typer.Option(help="Tile side in pixels (memory is one tile of the cube).")] = 256,
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass.")] = 64,
    compile: Annotated[str, typer.Option(help="Compile the model for the CPU first (10-20 s, then about 2.5x as "
                                         "fast): yes, no, or auto (for scenes of 250,000 pixels or more).")] = "auto",
    device: Device = "cpu",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output folder.")] = False,
    quiet: Quiet = False,
) -> None:
    """Classify every pixel of a cube, tile by tile; the GeoTIFFs keep the cube's georeferencing."""
    from .data.rasters import CubeSource
    from .predict import predict_cube
    from .run import load_run

    dev = resolve_device(device)
    trained = load_run(run, dev)
    source = CubeSource(cube, cube_key)
    s = predict_cube(trained, source, out, tile=tile, batch_size=batch_size, device=dev, progress=not quiet,
                     overwrite=overwrite, compile=compile)
    console.print(f"{s['pixels']:,} pixels in {s['seconds']:.1f} s ({s['pixels_per_s']:,.0f} px/s); wrote {out}/"
                  f"classes.png, classes.tif, classes.npy, confidence.tif, confidence.npy"
                  + ("" if s["georeferenced"] else " (the cube has no georeferencing, so neither do the GeoTIFFs)"))


@app.command()
def export(
    scene: Annotated[str, typer.Argument(help="Registered scene.")],
    out: Annotated[Path, typer.Option(help="Folder for cube.hdr/.img, labels.tif and classes.toml.")] = Path("scene"),
    data_dir: DataDir = None,
    download: Download = False,
    no_verify: NoVerify = False,
    quiet: Quiet = False,
) -> None:
    """Re-package a registered scene as a user would have it: an ENVI cube, GeoTIFF labels and a class file."""
    from importlib import resources

    from .data.rasters import write_envi, write_labels_tif

    data = load_scene_cli(scene, data_dir, download, no_verify, quiet)
    out.mkdir(parents=True, exist_ok=True)
    cube = write_envi(out / "cube", data.cube)
    write_labels_tif(out / "labels.tif", data.labels)
    (out / "classes.toml").write_text(
        resources.files("hsiclip.text.prompt_sets").joinpath(f"{scene}.toml").read_text())
    console.print(f"wrote {cube.with_suffix('.hdr')} + {cube.name}, {out / 'labels.tif'}, {out / 'classes.toml'}")


def _parse_epochs(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        if not value.isdigit() or int(value) < 1:
            raise ConfigError(f"--epochs expects NAME=N with N a positive integer, got {item!r}")
        out[name] = int(value)
    return out


def _dim_log(quiet: bool) -> Callable[[str], None]:
    return lambda msg: None if quiet else console.print(msg, style="dim", markup=False)


def _measured_on(records: list[dict[str, Any]]) -> str:
    """The machines the records were measured on (a --no-train call only tabulates them)."""
    from .efficiency import machine

    return "; ".join(sorted({r.get("machine") or machine() for r in records}))


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
    epochs: Annotated[list[str] | None, typer.Option(help="NAME=N: run system NAME for N epochs (repeatable).")] = None,
    max_epochs: Annotated[int | None, typer.Option(help="Cap every system's epochs (stated in the table).")] = None,
    window: Annotated[int | None, typer.Option(help="Leak-free protocol: the window no test pixel's window may share "
                                                    "with a training pixel (default 15).")] = None,
    work_dir: Annotated[Path, typer.Option(help="Per-(system, seed) records and weights; resumable.")] = Path(
        "runs/compare"),
    out: Annotated[Path, typer.Option(help="Folder for compare_<scene>.md/.csv/.png.")] = Path("results"),
    note: Annotated[list[str] | None, typer.Option(help="A line added to the table's notes (repeatable).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the systems and exit.")] = False,
    no_train: Annotated[bool, typer.Option("--no-train", help="Only tabulate the finished (system, seed) pairs.")
                        ] = False,
    data_dir: DataDir = None,
    device: Device = "cpu",
    download: Download = False,
    no_verify: NoVerify = False,
    quiet: Quiet = False,
) -> None:
    """Train every system on the same splits; write the comparison table, CSV and OA-vs-FLOPs figure."""
    from .compare import ALL_SYSTEMS, PROTOCOLS, SYSTEMS, resolve_epochs, run_comparison
    from .report import protocols_markdown, write_report

    if list_:
        table = Table(title="comparison systems (`--models all` runs them in this order)")
        for col in ("name", "row", "kind", f"epochs on {scene}"):
            table.add_column(col)
        for name in ALL_SYSTEMS:
            s = SYSTEMS.get(name)
            try:
                e = resolve_epochs(name, scene)
            except ConfigError:
                e = "not available"
            table.add_row(name, s.label, s.kind, "-" if e is None else str(e))
        console.print(table)
        return
    names = list(ALL_SYSTEMS) if models == "all" else [m.strip() for m in models.split(",") if m.strip()]
    for name in names:
        SYSTEMS.get(name)
    seed_list = _parse_seeds(seeds)
    dev = resolve_device(device)
    data = load_scene_cli(scene, data_dir, download, no_verify, quiet)
    protocols = [p.strip() for p in protocol.split(",") if p.strip()]
    for p in protocols:
        PROTOCOLS.get(p)
    command = "hsiclip " + shlex.join(STATE["argv"])
    by_protocol = {}
    for p in protocols:
        records = run_comparison(data, names, seed_list, protocol=p, fraction=fraction,
                                 epochs=_parse_epochs(epochs or []), max_epochs=max_epochs, work_dir=work_dir,
                                 device=dev, cache_dir=cache_dir(), progress=not quiet,
                                 log=_dim_log(quiet),
                                 train=not no_train, window=window)
        if not records:
            message = f"no finished (system, seed) pairs to tabulate under the {p} protocol; run without --no-train"
            if len(protocols) == 1:
                raise ConfigError(message)
            console.print(f"[yellow]{message}[/yellow]")
            continue
        paths = write_report(records, out, command=command, machine=_measured_on(records), notes=note or [])
        console.print("wrote " + ", ".join(str(x) for x in paths))
        by_protocol[p] = records
    if "paper" in by_protocol and "leakfree" in by_protocol:
        md = out / ("protocols.md" if scene == "indian_pines" else f"protocols_{scene}.md")
        md.write_text(protocols_markdown(by_protocol["paper"], by_protocol["leakfree"], command=command,
                                         machine=_measured_on([r for rs in by_protocol.values() for r in rs])))
        console.print(f"wrote {md}")


@app.command()
def reproduce(
    name: Annotated[str | None, typer.Argument(help="Experiment (see --list).")] = None,
    scene: Annotated[str, typer.Option(help="Registered scene.")] = "indian_pines",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds (the paper repeats each experiment 4 times).")
                     ] = "0,1,2,3",
    epochs: Annotated[list[str] | None, typer.Option(help="NAME=N: run baseline NAME for N epochs (repeatable).")
                      ] = None,
    skip: Annotated[list[str] | None, typer.Option(help="Leave the rows of this system out (repeatable); they "
                                                        "stay in the table as skipped.")] = None,
    work_dir: Annotated[Path, typer.Option(help="Run folders of the recipe variants; resumable.")] = Path(
        "runs/reproduce"),
    compare_dir: Annotated[Path, typer.Option(help="Records shared with `hsiclip compare`.")] = Path("runs/compare"),
    out: Annotated[Path, typer.Option(help="Folder for <name>.md/.csv/.png.")] = Path("results"),
    list_: Annotated[bool, typer.Option("--list", help="List the experiments and exit.")] = False,
    no_train: Annotated[bool, typer.Option("--no-train", help="Only tabulate what is already trained.")] = False,
    data_dir: DataDir = None,
    device: Device = "cpu",
    download: Download = False,
    no_verify: NoVerify = False,
    quiet: Quiet = False,
) -> None:
    """Reproduce one of the paper's tables or figures; results are cached per (config, seed)."""
    from .reproduce import EXPERIMENTS, ORDER
    from .reproduce import reproduce as run_experiment

    if list_ or name is None:
        table = Table(title="experiments (`hsiclip reproduce NAME`)")
        for col in ("name", "paper", "what"):
            table.add_column(col)
        for n in ORDER:
            e = EXPERIMENTS.get(n)
            table.add_row(n, e.source, e.title)
        console.print(table)
        if name is None and not list_:
            raise ConfigError("give an experiment name (listed above)")
        return
    EXPERIMENTS.get(name)
    seed_list = _parse_seeds(seeds)
    dev = resolve_device(device)
    data = load_scene_cli(scene, data_dir, download, no_verify, quiet)
    paths = run_experiment(name, data, seed_list, out_dir=out, work_dir=work_dir, compare_dir=compare_dir,
                           command="hsiclip " + shlex.join(STATE["argv"]), epochs=_parse_epochs(epochs or []),
                           skip=[s.strip() for item in skip or [] for s in item.split(",") if s.strip()],
                           device=dev, cache_dir=cache_dir(), progress=not quiet, train=not no_train,
                           log=_dim_log(quiet))
    console.print("wrote " + ", ".join(str(p) for p in paths))


@app.command()
def info(
    config: Annotated[str | None, typer.Option(help="Config file or built-in recipe name.")] = None,
    scene: Annotated[str | None, typer.Option(help="Scene (sets the number of classes).")] = None,
    encoder: Annotated[str | None, typer.Option(help="Text encoder (sets the text dimension).")] = None,
    projection: Annotated[str | None, typer.Option(help="text or vision.")] = None,
    context: Annotated[int | None, typer.Option(help="Learnable prompt context vectors (CoOp).")] = None,
) -> None:
    """Print trainable / frozen / total parameters and FLOPs per sample of a model."""
    from .config import load_config
    from .efficiency import describe_model

    cfg = load_config(config, scene).replace(**{"text.encoder": encoder, "model.projection": projection,
                                                "text.context": context})
    rows, note = describe_model(cfg)
    table = Table(title=f"{cfg.name}: {cfg.model.name} on {cfg.data.scene}, encoder {cfg.text.encoder}")
    for col in ("part", "parameters", "trainable"):
        table.add_column(col, justify="left" if col == "part" else "right")
    for part, n, trainable in rows:
        table.add_row(part, "?" if n is None else f"{n:,}", trainable)
    console.print(table)
    if note:
        console.print(note)


@app.command()
def scenes(data_dir: DataDir = None) -> None:
    """List the registered scenes and whether their files are found."""
    from .data.scenes import SCENES, get_scene

    dirs = [*search_dirs(data_dir), cache_dir() / "data"]
    table = Table(title="registered scenes")
    for col in ("name", "title", "size", "classes", "found in"):
        table.add_column(col)
    for name in SCENES:
        s = get_scene(name)
        where = next((str(d) for d in dirs if (d / s.cube.filename).is_file() and (d / s.gt.filename).is_file()),
                     "TensorLy package" if name == "indian_pines" else "-")
        table.add_row(name, s.title, "x".join(map(str, s.shape)), str(len(s.class_names)), where)
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code. Errors print one line unless --debug is given."""
    args = sys.argv[1:] if argv is None else argv
    STATE["debug"] = "--debug" in args
    STATE["argv"] = list(args)
    try:
        app(args=args, prog_name="hsiclip", standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 130
    except (HsiclipError, KeyboardInterrupt) as e:
        if STATE["debug"]:
            raise
        err_console.print(f"[red]error:[/red] {e}" if str(e) else "interrupted", highlight=False, soft_wrap=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
