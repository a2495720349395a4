"""One run, end to end: preprocess a scene, embed its prompts, train, evaluate, and save a run folder.

A run folder holds `config.json` (resolved config), `split.npz` (train/test pixel indices), `checkpoint.pt`
(weights, text prototypes, PCA), `metrics.json` and `history.json`. It is written to a temporary sibling
folder and renamed at the end, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .config import RunConfig, dump, from_dict
from .data.preprocess import SpectralPCA
from .data.scenes import Scene
from .data.splits import Split, holdout, random_split
from .data.windows import WindowSampler
from .efficiency import machine
from .engine import predict, train_model
from .errors import ConfigError, DataError
from .losses import ContrastiveLoss
from .metrics import classification_metrics
from .models import MODELS, create_model
from .text.context import attach_context
from .text.encoders import TextEncoder, embed_class_prompts
from .text.prompts import class_texts, load_prompt_set

METRIC_KEYS = ("oa", "aa", "kappa", "per_class", "confusion")


@contextmanager
def atomic_dir(out_dir: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; it replaces `out_dir` on success and is removed on any failure,
    so a failed or interrupted command never leaves a half-written folder."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield tmp
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass
class Run:
    """A trained model with everything needed to apply it again."""

    cfg: RunConfig
    model: torch.nn.Module
    pca: SpectralPCA
    class_names: tuple[str, ...]
    split: Split | None = None


def prompt_texts(cfg: RunConfig, class_names: tuple[str, ...], prompt_file: Path | None) -> list[list[str]]:
    """Per class, the configured prompts of the scene's prompt set (or of `prompt_file`)."""
    prompts = load_prompt_set(prompt_file or cfg.data.scene)
    if [p.name for p in prompts] != list(class_names):
        raise ConfigError(f"the prompt set's classes {[p.name for p in prompts]} do not match the scene's "
                          f"{list(class_names)}")
    return class_texts(prompts, cfg.text.prompts)


def train_run(cfg: RunConfig, scene: Scene, out_dir: Path, *, device: str = "cpu", cache_dir: Path | None = None,
              split: Split | None = None, prompt_file: Path | None = None, progress: bool = True,
              allow_download: bool = False, overwrite: bool = False, with_map: bool = False) -> dict[str, Any]:
    """Train `cfg` on `scene`, evaluate on the test pixels, write the run folder; return its metrics."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise ConfigError(f"run folder {out_dir} exists and is not empty; choose another --out or add --overwrite")
    MODELS.get(cfg.model.name)  # fail on an unknown name before any work
    torch.manual_seed(cfg.train.seed)
    np.random.seed(cfg.train.seed)
    split = split or random_split(scene.labels, fraction=cfg.data.train_fraction, count=cfg.data.train_count,
                                  seed=cfg.train.seed, class_names=scene.class_names)
    texts = prompt_texts(cfg, scene.class_names, prompt_file)
    # (C, T) embeddings of the prompts with the configured encoder (cached on disk)
    feats = torch.from_numpy(embed_class_prompts(texts, cfg.text.encoder, cache_dir, allow_download=allow_download))

    # paper protocol: PCA fitted on every pixel of the scene (labelled or not), as the DCTN code does; leak-free:
    # on the training pixels only
    pixels = scene.cube.reshape(-1, scene.cube.shape[-1])
    pca = SpectralPCA.fit(pixels if cfg.data.pca_fit == "scene" else pixels[split.train], cfg.data.pca_components,
                          whiten=cfg.data.pca_whiten, seed=cfg.train.seed)
    sampler = WindowSampler(pca.transform(scene.cube), cfg.model.window, device)
    labels = scene.targets

    model = create_model(cfg.model, cfg.data.pca_components, feats).to(device)
    if cfg.text.context:  # CoOp: the prompts' learnable context, trained through the frozen encoder
        attach_context(model, cfg.text.context, feats.shape[1], cfg.train.seed)
        encoder = TextEncoder(cfg.text.encoder, device=device, allow_download=allow_download, cache_dir=cache_dir)
        model.prompt_context.bind(encoder, texts)
    fit, val = split, None
    if cfg.train.val_fraction > 0:  # best epoch chosen on pixels held out of the training pixels, never on test
        fit, val_index = holdout(split, scene.labels, cfg.train.val_fraction, cfg.train.seed)
        val = (val_index, labels[val_index])
    result = train_model(model, sampler, fit.train, labels[fit.train], cfg.train,
                         ContrastiveLoss(cfg.loss, cfg.train.label_smoothing), progress=progress, val=val)
    t0 = time.perf_counter()
    pred, _ = predict(model, sampler, split.test, cfg.train.eval_batch_size, progress=progress, desc="test",
                      tta=cfg.train.tta)
    infer_s = time.perf_counter() - t0
    metrics = classification_metrics(labels[split.test], pred, len(scene.class_names))
    metrics.update(class_names=list(scene.class_names), n_train=len(split.train), n_test=len(split.test),
                   seed=cfg.train.seed, timing={"train_s": result.seconds, "infer_s": infer_s, "device": device,
                                                  "machine": machine()})

    with atomic_dir(out_dir) as tmp:
        dump(cfg, tmp / "config.json")
        split.save(tmp / "split.npz")
        torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "pca": pca.state_dict(),
                    "class_names": list(scene.class_names), "scene_source": scene.source,
                    "hsiclip_version": __version__}, tmp / "checkpoint.pt")
        (tmp / "history.json").write_text(json.dumps(result.history, indent=1) + "\n")
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        if with_map:
            write_map(Run(cfg, model, pca, scene.class_names, split), scene, tmp / "map.png", device,
                      progress=progress, sampler=sampler, oa=metrics["oa"])
    return metrics


def load_run(run_dir: Path, device: str = "cpu") -> Run:
    """Rebuild the model, PCA and split of a run folder."""
    run_dir = Path(run_dir)
    ckpt_path = run_dir / "checkpoint.pt"
    if not ckpt_path.is_file():
        raise ConfigError(f"{run_dir} is not a run folder (no checkpoint.pt); create one with `hsiclip train`")
    try:
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
    except Exception as e:
        raise DataError(f"cannot read {ckpt_path}: {e}") from None
    cfg = from_dict(ckpt["config"])
    state = ckpt["model"]
    text = next(v for k, v in state.items() if k.split(".")[-1] == "text_features")  # an ensemble's: members.0.
    model = create_model(cfg.model, cfg.data.pca_components, text).to(device)
    if "prompt_context.ctx" in state:  # the learnt context is kept; its prototypes are already `text_features`
        attach_context(model, *state["prompt_context.ctx"].shape)
    model.load_state_dict(state)
    model.eval()
    split = Split.load(run_dir / "split.npz") if (run_dir / "split.npz").is_file() else None
    return Run(cfg, model, SpectralPCA.from_state_dict(ckpt["pca"]), tuple(ckpt["class_names"]), split)


def sampler_for(run: Run, cube: np.ndarray, device: str = "cpu") -> WindowSampler:
    return WindowSampler(run.pca.transform(cube), run.cfg.model.window, device)


def evaluate_run(run: Run, scene: Scene, device: str = "cpu", progress: bool = True) -> dict[str, Any]:
    """Metrics of a run's model on its own test split of `scene` (same batches, so bitwise the same)."""
    if run.split is None:
        raise ConfigError("the run folder has no split.npz to evaluate on")
    if tuple(scene.class_names) != run.class_names:
        raise DataError(f"scene {scene.name} has classes {scene.class_names}, the run was trained on "
                        f"{run.class_names}")
    labels = scene.targets
    pred, _ = predict(run.model, sampler_for(run, scene.cube, device), run.split.test,
                      run.cfg.train.eval_batch_size, progress=progress, desc="test", tta=run.cfg.train.tta)
    return classification_metrics(labels[run.split.test], pred, len(run.class_names))


def predict_scene(run: Run, cube: np.ndarray, device: str = "cpu", progress: bool = True,
                  batch_size: int | None = None, sampler: WindowSampler | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Class map (H, W) with labels 1..C and confidence map (H, W) for every pixel of `cube`."""
    h, w, _ = cube.shape
    sampler = sampler or sampler_for(run, cube, device)
    pred, conf = predict(run.model, sampler, np.arange(h * w), batch_size or run.cfg.train.eval_batch_size,
                         progress=progress, desc="map", tta=run.cfg.train.tta)
    return (pred + 1).reshape(h, w), conf.reshape(h, w)


def write_map(run: Run, scene: Scene, path: Path, device: str = "cpu", progress: bool = True,
              sampler: WindowSampler | None = None, oa: float | None = None) -> Path:
    """Classify every pixel of `scene` and save the map beside the ground truth as a PNG."""
    from .plots import classification_map_figure

    pred, _ = predict_scene(run, scene.cube, device, progress=progress, sampler=sampler)
    if oa is None and run.split is not None:
        labels = scene.labels.reshape(-1)
        oa = float(100 * np.mean(pred.reshape(-1)[run.split.test] == labels[run.split.test]))
    fig = classification_map_figure(scene.labels, pred, list(run.class_names),
                                    title=f"{scene.name}: {run.cfg.name}, seed {run.cfg.train.seed}", oa=oa)
    fig.savefig(path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return Path(path)
