"""Every comparison system on the same split, preprocessing budget and metrics, resumable per (system, seed).

`run_comparison` is a loop over `pipeline.train` on one `RecordStore`: each (system, seed) pair is trained once,
its record (metrics, trainable parameters, FLOPs per sample, training and test-inference seconds) written beside
its run folder, and a pair whose record exists (with the same recipe) is skipped, so an interrupted comparison
resumes where it stopped. `report.py` turns the records into the tables and the trade-off figure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..data.protocols import PROTOCOLS, protocol_tag
from ..data.scenes import Scene
from ..data.splits import Split
from ..efficiency import machine
from ..errors import ConfigError
from ..records import RecordStore
from ..systems import COMPARISON, get_system
from .runner import Job, execute

ALL_SYSTEMS = COMPARISON  # `hsiclip compare --models all`, in table order


def default_epochs(name: str, scene: str) -> int | None:
    """Epochs the system's paper or code uses on `scene` (None for the pixel classifiers)."""
    system = get_system(name)
    return system.epochs(system.recipe(scene))


def system_window(name: str, scene: str) -> int:
    """The spatial window a system reads around each pixel (1 for the pixel classifiers)."""
    system = get_system(name)
    return system.window(system.recipe(scene))


def resolve_epochs(name: str, scene: str, epochs: dict[str, int] | None = None,
                   max_epochs: int | None = None) -> int | None:
    """Epochs a system runs for: an explicit override, else its paper's, capped at `max_epochs`."""
    e = (epochs or {}).get(name) or default_epochs(name, scene)
    return e if e is None or max_epochs is None else min(e, max_epochs)


def system_rows(scene: str) -> list[tuple[str, str, str, str]]:
    """(name, row label, kind, epochs on `scene`) of every compared system, in table order."""
    rows = []
    for name in ALL_SYSTEMS:
        try:
            e = resolve_epochs(name, scene)
        except ConfigError:
            e = "not available"
        rows.append((name, get_system(name).label, get_system(name).kind, "-" if e is None else str(e)))
    return rows


def recipe_changes(stored: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """The fields whose value differs between a record's recipe and the current one, as `field: old -> new`.

    Only fields both know are compared: a field added later defaults to the behaviour the record was trained
    with, and a removed one held its "off" value (`config.REMOVED_FIELDS`). A record without a recipe (baselines
    before every record kept one) is taken as it is.
    """
    if stored is None:
        return []
    return [f"{k}: {stored[k]!r} -> {current[k]!r}" for k in sorted(stored.keys() & current.keys())
            if stored[k] != current[k]]


def _leave_out_wide(names: Sequence[str], scene: str, tag: str, window: int,
                    log: Callable[[str], None]) -> list[str]:
    """The systems that fit a leak-free protocol's margin window; a log line for each that does not."""
    kept = []
    for n in names:
        w = system_window(n, scene)
        if w > window:
            log(f"{get_system(n).label} reads {w} x {w} windows, more than the {tag} margin allows: left out of "
                "this protocol")
        else:
            kept.append(n)
    return kept


def _finished(store: RecordStore, stem: Path, recipe: dict[str, Any], label: str, train_missing: bool,
              log: Callable[[str], None]) -> dict[str, Any] | None:
    """The pair's record if it exists with this recipe; None if it must (or, with `train_missing` off, would) train."""
    done = store.load(stem)
    if done is None:
        return None
    changed = recipe_changes(done.get("recipe"), recipe)
    if not changed:
        return done
    log(f"{label}: its record was trained with another recipe ({'; '.join(changed)}): "
        + ("training again" if train_missing else "left out"))
    return None


def plan_comparison(scene: Scene, names: Sequence[str], seeds: Sequence[int], *, protocol: str = "paper",
                    fraction: float = 0.1, epochs: dict[str, int] | None = None, max_epochs: int | None = None,
                    work_dir: Path = Path("runs/compare"), cache_dir: Path | None = None,
                    log: Callable[[str], None] = print, train_missing: bool = True, window: int | None = None
                    ) -> tuple[list[Path], list[Job]]:
    """The record stems of every (system, seed) pair in table order, and the jobs for the pairs to train."""
    proto = PROTOCOLS.get(protocol)
    systems = {n: get_system(n) for n in names}  # fail on any unknown name before training anything
    tag, window = protocol_tag(protocol, window)
    if window:
        names = _leave_out_wide(names, scene.name, tag, window, log)
    if unknown := set(epochs or {}) - set(systems):
        raise ConfigError(f"epochs given for {sorted(unknown)}, which are not compared here")
    store = RecordStore(work_dir)
    splits: dict[int, Split] = {}
    stems, jobs = [], []
    for name, seed in [(n, s) for n in names for s in seeds]:
        system = systems[name]
        n_epochs = resolve_epochs(name, scene.name, epochs, max_epochs)
        stem = store.stem(scene.name, tag, fraction, name, seed, n_epochs)
        recipe = system.flat_recipe(system.recipe(scene.name, seed=seed, epochs=n_epochs))
        label = f"{system.label}, seed {seed}"
        if _finished(store, stem, recipe, label, train_missing, log) is not None:
            stems.append(stem)
            continue
        if not train_missing:
            if store.load(stem) is None:
                log(f"{label}: not run yet ({n_epochs or '-'} epochs), left out")
            continue
        if seed not in splits:
            splits[seed] = proto.split(scene, seed, fraction, window, None)
        stems.append(stem)
        jobs.append(Job(stem, name, seed, label, {"protocol": protocol, "split": splits[seed], "fraction": fraction,
                                                  "window": window or None, "epochs": n_epochs,
                                                  "cache_dir": cache_dir}))
    return stems, jobs


def run_comparison(scene: Scene, names: Sequence[str], seeds: Sequence[int], *, protocol: str = "paper",
                   fraction: float = 0.1, epochs: dict[str, int] | None = None, max_epochs: int | None = None,
                   work_dir: Path = Path("runs/compare"), device: str = "cpu", cache_dir: Path | None = None,
                   progress: bool = True, log: Callable[[str], None] = print, train_missing: bool = True,
                   window: int | None = None, executor: str = "local", address: str | None = None,
                   workers: int | None = None) -> list[dict[str, Any]]:
    """Train every (system, seed) pair that has no record yet; return all their records, in table order.

    All systems see the same split for a given seed. `train_missing=False` only collects the finished pairs.
    `window` is a leak-free protocol's margin window (default `LEAKFREE_WINDOW`); systems reading a larger window
    are left out of that protocol, with a log line. `executor`, `address`, `workers`: where the pairs train
    (`runner.execute`); the records are the same whichever runs them.
    """
    stems, jobs = plan_comparison(scene, names, seeds, protocol=protocol, fraction=fraction, epochs=epochs,
                                  max_epochs=max_epochs, work_dir=work_dir, cache_dir=cache_dir, log=log,
                                  train_missing=train_missing, window=window)
    execute(jobs, scene, executor=executor, address=address, workers=workers, device=device, progress=progress,
            log_line=log)
    return [r for r in (RecordStore.load(stem) for stem in stems) if r is not None]


def _measured_on(records: Sequence[dict[str, Any]]) -> str:
    """The machines the records were measured on (a call that only tabulates them did not measure)."""
    return "; ".join(sorted({r.get("machine") or machine() for r in records}))


def compare_protocols(scene: Scene, names: Sequence[str], seeds: Sequence[int], protocols: Sequence[str], *,
                      out: Path, command: str, notes: Sequence[str] = (), log: Callable[[str], None] = print,
                      **kw: Any) -> list[Path]:
    """`run_comparison` under each protocol, then its tables; with both the paper and the leak-free protocol also
    `protocols[_<scene>].md`, what each system loses between them. Returns the paths written."""
    from .report import protocols_markdown, write_report

    by_protocol, paths = {}, []
    for p in protocols:
        records = run_comparison(scene, names, seeds, protocol=p, log=log, **kw)
        if not records:
            message = f"no finished (system, seed) pairs to tabulate under the {p} protocol; run without --no-train"
            if len(protocols) == 1:
                raise ConfigError(message)
            log(message)
            continue
        paths += write_report(records, out, command=command, machine=_measured_on(records), notes=notes)
        by_protocol[p] = records
    if "paper" in by_protocol and "leakfree" in by_protocol:
        md = Path(out) / ("protocols.md" if scene.name == "indian_pines" else f"protocols_{scene.name}.md")
        md.write_text(protocols_markdown(by_protocol["paper"], by_protocol["leakfree"], command=command,
                                         machine=_measured_on([r for rs in by_protocol.values() for r in rs])))
        paths.append(md)
    return paths
