"""The paper's figure experiments: UMAP of embeddings and loss landscapes (Figure 2), classification maps.

Each works on trained comparison runs (`run_comparison`, so `hsiclip compare` and `hsiclip reproduce` share them)
and writes `<stem>.md` (command, seeds, machine, numbers), `<stem>.csv` and `<stem>.png`.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.scenes import Scene
from ..data.windows import WindowSampler
from ..efficiency import machine
from ..records import RecordStore
from ..run import Run, load_run
from ..systems import get_system
from .catalog import Experiment, register
from .compare import resolve_epochs, run_comparison
from .report import full_budget

TABLE1 = ("cnn2d", "cnn3d", "hybridsn", "vit", "ssftt", "morphformer", "hit", "sstmnet", "dctn", "mcls_clip", "ours")
MAP_SYSTEMS = (*TABLE1, "flagship")  # the paper's Table 1 methods and our flagship recipe
LANDSCAPE_GRID = 21  # points per direction, over [-1, 1] (Li et al. plot 51; 21 keeps a CPU run to minutes)
LANDSCAPE_LEVEL = 1.0  # the basin is the connected region around the trained weights where loss <= L(0) + this
UMAP_POINTS = 4000  # test embeddings drawn per panel (stratified at random), plus the text prototypes


def _trained(scene: Scene, systems: Sequence[str], seeds: Sequence[int], kw: dict[str, Any]
             ) -> dict[tuple[str, int], tuple[dict[str, Any], Path]]:
    """(system, seed) -> (record, record stem) for every finished pair, training the missing ones if allowed."""
    systems = [s for s in systems if s not in kw["skip"]]
    epochs = kw["epochs"] or {}
    records = run_comparison(scene, systems, seeds, epochs={k: v for k, v in epochs.items() if k in systems},
                             work_dir=kw["compare_dir"], device=kw["device"], cache_dir=kw["cache_dir"],
                             progress=kw["progress"], log=kw["log"], train_missing=kw["train_missing"],
                             executor=kw["executor"], address=kw["address"], workers=kw["workers"])
    store = RecordStore(kw["compare_dir"])
    out = {}
    for r in records:
        n_epochs = resolve_epochs(r["model"], scene.name, epochs)
        out[r["model"], r["seed"]] = (r, store.stem(scene.name, "paper", 0.1, r["model"], r["seed"], n_epochs))
    return out


def _vlm_runs(scene: Scene, seeds: Sequence[int], kw: dict[str, Any]) -> Iterator[tuple[str, int, Run]]:
    """(system, seed, loaded run) for ours and M-CLS CLIP on every seed, training the missing ones if allowed."""
    runs = _trained(scene, ("ours", "mcls_clip"), seeds, kw)
    for name in ("ours", "mcls_clip"):
        for seed in seeds:
            if (name, seed) in runs:
                run = load_run(runs[name, seed][1], kw["device"])
                assert run.split is not None
                yield name, seed, run


def _header(title: str, command: str, seeds: Sequence[int], text: str) -> list[str]:
    return [f"# {title}", "", f"Command: `{command}`", "",
            f"Machine: {machine()}. Seeds: {' '.join(map(str, seeds))}. {text}", ""]


@torch.no_grad()
def _embed(model: torch.nn.Module, sampler: WindowSampler, index: np.ndarray, batch: int = 1024) -> np.ndarray:
    model.eval()
    out = [model.encode_image(sampler(torch.as_tensor(index[s : s + batch]))) for s in range(0, len(index), batch)]
    return torch.cat(out).numpy()


def embedding_stats(emb: np.ndarray, protos: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Silhouette (cosine) of the test embeddings by true class, their mean cosine to their own text prototype,
    and the mean margin between that and the closest other prototype."""
    from sklearn.metrics import silhouette_score

    cos = emb @ protos.T
    own = cos[np.arange(len(labels)), labels]
    other = np.where(np.eye(protos.shape[0], dtype=bool)[labels], -np.inf, cos).max(axis=1)
    n = min(len(labels), 5000)
    return {"silhouette": float(silhouette_score(emb, labels, metric="cosine", sample_size=n, random_state=seed)),
            "cos_own": float(own.mean()), "margin": float((own - other).mean())}


def _stratified(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most `n` positions, each class kept in proportion but with at least 20 points (or all it has)."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = min(len(idx), max(20, round(n * len(idx) / len(labels))))
        keep.append(rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(keep))


def embeddings(scene: Scene, seeds: Sequence[int], *, stem: Path, command: str, **kw: Any) -> list[Path]:
    """Figure 2 (bottom): UMAP of test embeddings with the text prototypes, ours against M-CLS CLIP."""
    import umap

    from .plots import embeddings_figure

    stats, panels = [], []
    labels_all = scene.targets
    for name, seed, run in _vlm_runs(scene, seeds, kw):
        test = run.split.test
        emb = _embed(run.model, run.sampler(scene.cube, kw["device"]), test)
        protos = run.model.encode_text().detach().numpy()
        s = embedding_stats(emb, protos, labels_all[test], seed)
        stats.append({"system": name, "seed": seed, **s})
        if seed == seeds[0]:
            keep = _stratified(labels_all[test], UMAP_POINTS, seed)
            with warnings.catch_warnings():  # "n_jobs overridden by setting random_state": we want it seeded
                warnings.simplefilter("ignore", UserWarning)
                reducer = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=seed, n_jobs=1)
                xy = reducer.fit_transform(emb[keep])
                # prototypes are placed among the embeddings they are most similar to (fitting them with the
                # embeddings would clump them together: text prototypes are closer to each other than to any
                # window embedding)
                at = reducer.transform(protos)
            panels.append({"title": f"{get_system(name).label}, seed {seed}: silhouette {s['silhouette']:.3f}",
                           "xy": xy, "labels": labels_all[test][keep], "protos": at})
    png, csv_path, md = stem.with_suffix(".png"), stem.with_suffix(".csv"), stem.with_suffix(".md")
    if panels:
        fig = embeddings_figure(panels, list(scene.class_names), title=f"{scene.name}: test embeddings (UMAP) "
                                "and the class text prototypes (stars)")
        fig.savefig(png, dpi=150)
    _write_csv(csv_path, stats)
    lines = _header(f"Embeddings of test pixels (Figure 2, bottom), {scene.name}", command, seeds,
                    f"UMAP (umap-learn, cosine, 15 neighbours, min_dist 0.1) of {UMAP_POINTS} test embeddings "
                    "drawn per class in proportion (at least 20 each), first seed only; each text prototype is "
                    "placed by UMAP's transform, among the embeddings most similar to it. "
                    "The numbers use every test pixel of every seed: silhouette (cosine) of the embeddings grouped "
                    "by true class, the mean cosine between an embedding and its own class prototype, and the mean "
                    "margin between that and the most similar other prototype (mean ± std over seeds).")
    lines += _stats_table(stats, ("silhouette", "cos_own", "margin"))
    lines += ["", "The paper shows this figure without numbers and reads it as \"neural-collapse-like\": tighter, "
              "better separated clusters for ours than for M-CLS CLIP. Higher silhouette and margin mean that here."]
    mean = {(n, k): np.mean([r[k] for r in stats if r["system"] == n]) for n in ("ours", "mcls_clip")
            for k in ("silhouette", "margin") if any(r["system"] == n for r in stats)}
    for key in ("silhouette", "margin"):
        if ("ours", key) in mean and ("mcls_clip", key) in mean:
            ok = mean["ours", key] > mean["mcls_clip", key]
            verdict = "Confirmed" if ok else "**Not confirmed**"
            lines.append(f"- Paper: ours clusters tighter than CLIP; by {key}: {verdict}"
                         f" here (ours {mean['ours', key]:.3f}, M-CLS CLIP {mean['mcls_clip', key]:.3f}).")
    lines += ["", f"![UMAP]({png.name})"]
    md.write_text("\n".join(lines) + "\n")
    return [md, csv_path, png]


def _stats_table(stats: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[str]:
    lines = ["| system | seeds | " + " | ".join(keys) + " |", "| --- | --- |" + " --- |" * len(keys)]
    for name in dict.fromkeys(s["system"] for s in stats):
        rs = [s for s in stats if s["system"] == name]
        cells = [f"{np.mean([r[k] for r in rs]):.3f} ± {np.std([r[k] for r in rs]):.3f}" for k in keys]
        lines.append(f"| {get_system(name).label} | {' '.join(str(r['seed']) for r in rs)} | " + " | ".join(cells)
                     + " |")
    return lines


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        if rows:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in r.items()} for r in rows)


def filter_normalized_direction(params: Sequence[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    """A random direction with each filter's norm equal to the weights' (Li et al., NeurIPS 2018, Sec. 4).

    A filter is one slice along the first dimension of a weight of two or more dimensions; one-dimensional
    parameters (biases, norm scales, the logit scale) get no perturbation, as in the authors' `ignore biasbn`.
    """
    out = []
    for p in params:
        if p.dim() < 2:
            out.append(torch.zeros_like(p))
            continue
        d = torch.randn(p.shape, generator=generator, dtype=p.dtype)
        dn = d.flatten(1).norm(dim=1).clamp_min(1e-12)
        pn = p.detach().flatten(1).norm(dim=1)
        out.append(d * (pn / dn).view(-1, *([1] * (p.dim() - 1))))
    return out


@torch.no_grad()
def loss_surface(model: torch.nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 windows: torch.Tensor, target: torch.Tensor, grid: np.ndarray, seed: int = 0,
                 progress: bool = False) -> np.ndarray:
    """Loss at theta + a*d1 + b*d2 for every (a, b) in grid x grid (rows: b, columns: a), weights restored after."""
    from tqdm.auto import tqdm

    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    theta = [p.detach().clone() for p in params]
    g = torch.Generator().manual_seed(seed)
    d1, d2 = filter_normalized_direction(theta, g), filter_normalized_direction(theta, g)
    surface = np.zeros((len(grid), len(grid)))
    try:
        for i, b in enumerate(tqdm(grid, desc="landscape", unit="row", disable=not progress, leave=False)):
            for j, a in enumerate(grid):
                for p, t, u, v in zip(params, theta, d1, d2, strict=True):
                    p.copy_(t + a * u + b * v)
                torch.manual_seed(seed)  # the same semi-hard draws at every point
                surface[i, j] = float(loss_fn(model(windows), target))
    finally:
        for p, t in zip(params, theta, strict=True):
            p.copy_(t)
    return surface


def basin(surface: np.ndarray, level: float) -> float:
    """Share of the grid in the connected region around the centre where loss <= centre loss + `level`."""
    from scipy import ndimage

    c = len(surface) // 2
    regions, _ = ndimage.label(surface <= surface[c, c] + level)
    return float((regions == regions[c, c]).mean())


def loss_landscape(scene: Scene, seeds: Sequence[int], *, stem: Path, command: str, **kw: Any) -> list[Path]:
    """Figure 2 (top): the 2-D loss surface around the trained weights, ours against M-CLS CLIP."""
    from ..losses import ContrastiveLoss
    from .plots import landscape_figure

    grid = np.linspace(-1.0, 1.0, LANDSCAPE_GRID)
    stats, panels, cells = [], [], []
    for name, seed, run in _vlm_runs(scene, seeds, kw):
        train = run.split.train
        windows = run.sampler(scene.cube, kw["device"])(torch.as_tensor(train))
        target = torch.as_tensor(scene.targets[train])
        surface = loss_surface(run.model, ContrastiveLoss(run.recipe.loss), windows, target, grid, seed,
                               kw["progress"])
        c = len(grid) // 2
        stats.append({"system": name, "seed": seed, "loss_at_weights": float(surface[c, c]),
                      "loss_mean": float(surface.mean()), "basin_share": basin(surface, LANDSCAPE_LEVEL)})
        cells += [{"system": name, "seed": seed, "alpha": float(a), "beta": float(b), "loss": float(surface[i, j])}
                  for i, b in enumerate(grid) for j, a in enumerate(grid)]
        if seed == seeds[0]:
            panels.append({"title": f"{get_system(name).label} ({run.recipe.loss.negatives} negatives), "
                           f"seed {seed}", "surface": surface})
    png, csv_path, md = stem.with_suffix(".png"), stem.with_suffix(".csv"), stem.with_suffix(".md")
    if panels:
        fig = landscape_figure(panels, grid, title=f"{scene.name}: training loss around the trained weights "
                               "(filter-normalised random directions)")
        fig.savefig(png, dpi=150)
    _write_csv(csv_path, cells)
    lines = _header(f"Loss landscape (Figure 2, top), {scene.name}", command, seeds,
                    f"Each model's own training loss on its training pixels at θ + α·d1 + β·d2 over a "
                    f"{LANDSCAPE_GRID} × {LANDSCAPE_GRID} grid of α, β in [-1, 1], with d1, d2 Gaussian directions "
                    "normalised filter by filter to the weights' norms (Li et al., NeurIPS 2018; biases, norm "
                    "scales and the logit scale are not perturbed). Ours is scored with its curated loss (1 positive "
                    "+ 4 hard + 4 semi-hard logits, the same random draws at every point), M-CLS CLIP with its "
                    "full softmax over all classes, so the two surfaces' heights are not on one scale; their shapes "
                    f"are. Basin share: the part of the grid connected to the centre where the loss is at most "
                    f"{LANDSCAPE_LEVEL} above the loss at the trained weights (bigger = a wider minimum). The CSV "
                    "holds every grid value.")
    lines += _stats_table(stats, ("loss_at_weights", "loss_mean", "basin_share"))
    by = {s: np.mean([r["basin_share"] for r in stats if r["system"] == s]) for s in ("ours", "mcls_clip")
          if any(r["system"] == s for r in stats)}
    if len(by) == 2:
        verdict = "Confirmed" if by["ours"] > by["mcls_clip"] else "**Not confirmed**"
        lines += ["", f"- Paper: ours has a larger minimum diameter than CLIP. {verdict} here (basin share ours "
                  f"{by['ours']:.3f}, M-CLS CLIP {by['mcls_clip']:.3f})."]
    lines += ["", f"![loss landscape]({png.name})"]
    md.write_text("\n".join(lines) + "\n")
    return [md, csv_path, png]


def _test_map(scene: Scene, path: Path, device: str) -> tuple[np.ndarray, float] | None:
    """(H * W) map of a run's test-pixel classes (1..C, training pixels -1, others 0) and its test OA; None when
    the run folder was not kept."""
    if not (path / "checkpoint.pt").is_file():
        return None
    run = load_run(path, device)
    assert run.split is not None
    pred = run.test_pred
    if pred is None:  # a folder from before predictions were kept: predicted again, bitwise the same
        from ..engine import predict

        pred, _ = predict(run.model, run.sampler(scene.cube, device), run.split.test, progress=False)
    m = np.zeros(scene.labels.size, dtype=np.int64)
    m[run.split.test] = pred + 1
    m[run.split.train] = -1  # drawn white: training pixels are not scored
    return m, 100 * float(np.mean(pred == scene.targets[run.split.test]))


def maps(scene: Scene, seeds: Sequence[int], *, stem: Path, command: str, **kw: Any) -> list[Path]:
    """A classification map of every Table 1 method and the flagship beside the ground truth (first seed)."""
    from .plots import maps_figure

    seed = seeds[0]
    runs = _trained(scene, MAP_SYSTEMS, [seed], kw)
    panels, rows = [], []
    for name in MAP_SYSTEMS:
        label = get_system(name).label
        found = _test_map(scene, runs[name, seed][1], kw["device"]) if (name, seed) in runs else None
        if found is None:
            status = "not run" if (name, seed) not in runs else "run folder not kept"
            panels.append({"title": f"{label}\n{status}", "map": None})
            rows.append({"system": name, "label": label, "epochs": "", "oa": "", "status": status})
            continue
        m, oa = found
        record = runs[name, seed][0]
        epochs = record["epochs"]
        if not full_budget(record):  # not a result: no map is drawn for it
            status = f"reduced budget ({epochs} of {record['paper_epochs']} epochs), not comparable"
            panels.append({"title": f"{label}\n{epochs} of {record['paper_epochs']} epochs: not shown", "map": None})
            rows.append({"system": name, "label": label, "epochs": epochs, "oa": "", "status": status})
            continue
        panels.append({"title": f"{label}: OA {oa:.2f}", "map": m.reshape(scene.labels.shape)})
        rows.append({"system": name, "label": label, "epochs": epochs, "oa": round(oa, 2), "status": "done"})
    png, csv_path, md = stem.with_suffix(".png"), stem.with_suffix(".csv"), stem.with_suffix(".md")
    fig = maps_figure(scene.labels, panels, list(scene.class_names),
                      title=f"{scene.name}: test-pixel classification maps, seed {seed}")
    fig.savefig(png, dpi=130)
    _write_csv(csv_path, rows)
    title = f"Classification maps of the Table 1 methods and the flagship recipe, {scene.name}"
    lines = _header(title, command, [seed],
                    "Each panel colours the test pixels by the class the method predicts for them (the predictions "
                    "the comparison scored, kept in each run folder); training pixels are white, unlabelled pixels "
                    "black. A method that has not run its paper's epochs yet has no map (its reduced-budget map is "
                    "not a result) and its row says how far it ran.")
    lines += ["| system | epochs | OA (this seed) | status |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['label']} | {r['epochs'] or '–'} | {r['oa'] or '–'} | {r['status']} |" for r in rows]
    lines += ["", f"![maps]({png.name})"]
    md.write_text("\n".join(lines) + "\n")
    return [md, csv_path, png]


register(Experiment(
    "embeddings", "UMAP of test embeddings, ours against M-CLS CLIP", "Figure 2, bottom", figure=embeddings,
    systems=("ours", "mcls_clip")))
register(Experiment(
    "loss-landscape", "Loss landscape, ours against M-CLS CLIP", "Figure 2, top", figure=loss_landscape,
    systems=("ours", "mcls_clip")))
register(Experiment(
    "maps", "Classification maps of the Table 1 methods and the flagship", "Table 1 methods", figure=maps,
    systems=MAP_SYSTEMS))
