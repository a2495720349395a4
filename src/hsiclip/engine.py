"""Training and inference loops: explicit arguments, no globals, windows gathered per batch."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import TrainConfig
from .data.windows import WindowSampler


@dataclass
class TrainResult:
    history: list[dict[str, float]]  # per epoch: loss, train accuracy (%), seconds
    seconds: float  # wall time of the whole loop


@dataclass
class Checkpoint:
    """Mid-run checkpoints of one training loop at `path`: every `every` epochs the model, optimizer, scheduler,
    RNG states, epoch, history and elapsed seconds, written atomically. A loop given a checkpoint that exists for the
    same `key` (the run's resolved recipe) resumes after its epoch and ends bit for bit where an uninterrupted run
    ends (on a CPU: the same kernels in the same order); one for another key is ignored, with a log line."""

    path: Path
    every: int = 5
    key: dict[str, Any] = field(default_factory=dict)

    def restore(self, model: nn.Module, opt: torch.optim.Optimizer, sched: Any = None,
                extra: Sequence[torch.Tensor] = ()) -> tuple[int, list[dict[str, float]], float]:
        """Load the checkpoint into the loop's objects: (epochs done, history, seconds); (0, [], 0.0) if none."""
        if not self.path.is_file():
            return 0, [], 0.0
        state = torch.load(self.path, map_location="cpu", weights_only=False)
        if state.get("key") != self.key:
            logging.getLogger("hsiclip").info(f"ignoring checkpoint {self.path}: it is of another recipe")
            return 0, [], 0.0
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["scheduler"])
        with torch.no_grad():
            for tensor, saved in zip(extra, state["extra"], strict=True):
                tensor.copy_(saved)
        torch.set_rng_state(state["rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        logging.getLogger("hsiclip").info(f"resuming from {self.path} after epoch {state['epoch']}")
        return state["epoch"], state["history"], state["seconds"]

    def save(self, epoch: int, epochs: int, model: nn.Module, opt: torch.optim.Optimizer, sched: Any,
             history: list[dict[str, float]], seconds: float, extra: Sequence[torch.Tensor] = ()) -> None:
        """Write the state after `epoch` (1-based) if it is a multiple of `every` and not the last epoch."""
        if epoch % self.every or epoch >= epochs:
            return
        state = {"key": self.key, "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": None if sched is None else sched.state_dict(),
                 "extra": [t.detach().clone() for t in extra],
                 "rng": torch.get_rng_state(), "history": history, "seconds": seconds,
                 "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.path)  # atomic: a kill mid-write leaves the previous checkpoint


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th (0..7) of the 8 flips/90-degree rotations of (B, w, w, C) windows (k = 0: unchanged)."""
    if k >= 4:
        x = x.flip(2)
    return torch.rot90(x, k % 4, dims=(1, 2)) if k % 4 else x


def random_dihedral(x: torch.Tensor) -> torch.Tensor:
    """Each window flipped/rotated by one of the 8 transforms of the square, drawn at random per sample."""
    ks = torch.randint(0, 8, (x.shape[0],), device=x.device)
    out = torch.empty_like(x)
    for k in range(8):
        sel = ks == k
        if sel.any():
            out[sel] = dihedral(x[sel], k)
    return out


def _lr_lambda(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Linear warm-up over `warmup_epochs`, then cosine decay to 0 at the last step."""
    warm, total = cfg.warmup_epochs * steps_per_epoch, cfg.epochs * steps_per_epoch

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    return factor


def train_model(model: nn.Module, sampler: WindowSampler, index: np.ndarray, target: np.ndarray,
                cfg: TrainConfig, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                progress: bool = True, checkpoint: Checkpoint | None = None) -> TrainResult:
    """Adam over shuffled mini-batches of windows around `index` (flat pixels) with labels `target` (0..C-1).

    With `cfg`'s defaults this is the paper's loop; `cfg.schedule` adds a cosine schedule with warm-up and
    `cfg.augment` random flips/rotations of the windows. An ensemble's (K, B, C) scores give each member its loss.
    With `checkpoint`, the loop saves its state every few epochs and resumes from a saved one.
    """
    device = sampler.padded.device
    index_t = torch.as_tensor(index, device=device)
    target_t = torch.as_tensor(target, device=device)
    # foreach: one fused update over all tensors (faster per step than the loop on a CPU)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    n = len(index_t)
    # A trailing batch of one sample cannot be batch-normalised: BatchNorm2d/3d would fold that one sample's
    # statistics into its running estimates every epoch, and BatchNorm1d refuses it. Skip it there.
    skip_single = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    steps = -(-n // cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, steps)) if cfg.schedule == "cosine" else None
    done, history, before = checkpoint.restore(model, opt, sched) if checkpoint else (0, [], 0.0)
    start = time.perf_counter() - before
    bar = tqdm(range(done, cfg.epochs), desc="train", unit="epoch", disable=not progress, leave=False,
               initial=done, total=cfg.epochs)
    for epoch in bar:
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(n, device=device)
        total_loss, correct, seen = 0.0, 0, 0
        for s in range(0, n, cfg.batch_size):
            b = order[s : s + cfg.batch_size]
            if skip_single and len(b) == 1:
                continue
            windows = sampler(index_t[b])
            if cfg.augment:
                windows = random_dihedral(windows)
            logits = model(windows)  # (B, C), or (K, B, C) from an ensemble's K members: one loss each
            if logits.dim() == 3:
                loss = torch.stack([loss_fn(member, target_t[b]) for member in logits]).sum()
                logits = logits.mean(0)
            else:
                loss = loss_fn(logits, target_t[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            total_loss += loss.item() * len(b)
            correct += int((logits.argmax(1) == target_t[b]).sum())
            seen += len(b)
        seen = max(seen, 1)
        history.append({"epoch": epoch + 1, "loss": total_loss / seen, "train_acc": 100 * correct / seen,
                        "seconds": time.perf_counter() - t0})
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{100 * correct / seen:.1f}")
        if checkpoint:
            checkpoint.save(epoch + 1, cfg.epochs, model, opt, sched, history, time.perf_counter() - start)
    return TrainResult(history, time.perf_counter() - start)


@torch.no_grad()
def predict(model: nn.Module, sampler: WindowSampler, index: np.ndarray, batch_size: int = 1024,
            progress: bool = True, desc: str = "predict") -> tuple[np.ndarray, np.ndarray]:
    """Class (0..C-1) and softmax confidence for the windows around `index`, in batches of `batch_size`."""
    model.eval()
    device = sampler.padded.device
    index_t = torch.as_tensor(index, device=device)
    preds, confs = [], []
    with tqdm(total=len(index_t), desc=desc, unit="px", unit_scale=True, disable=not progress, leave=False) as bar:
        for s in range(0, len(index_t), batch_size):
            windows = sampler(index_t[s : s + batch_size])
            probs = model(windows).softmax(dim=1)  # (B, C)
            conf, pred = probs.max(dim=1)
            preds.append(pred.cpu())
            confs.append(conf.cpu())
            bar.update(len(pred))
    if not preds:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    return torch.cat(preds).numpy().astype(np.int64), torch.cat(confs).numpy().astype(np.float32)
