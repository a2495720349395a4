"""Training and inference loops: explicit arguments, no globals, windows gathered per batch."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

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


def train_model(model: nn.Module, sampler: WindowSampler, index: np.ndarray, target: np.ndarray,
                cfg: TrainConfig, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                progress: bool = True) -> TrainResult:
    """Adam over shuffled mini-batches of windows around `index` (flat pixels) with labels `target` (0..C-1)."""
    device = sampler.padded.device
    index_t = torch.as_tensor(index, device=device)
    target_t = torch.as_tensor(target, device=device)
    # foreach: one fused update over all tensors (measured ~20% faster per step than the loop on 2 CPU cores)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    n = len(index_t)
    # A trailing batch of one sample cannot be batch-normalised: BatchNorm2d/3d would fold that one sample's
    # statistics into its running estimates every epoch (measured: the 2D-CNN baseline's eval-mode OA fell from
    # 94% to 4% on Indian Pines, 1025 training pixels in batches of 32), and BatchNorm1d refuses it. Skip it there.
    skip_single = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc="train", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(n, device=device)
        total_loss, correct, seen = 0.0, 0, 0
        for s in range(0, n, cfg.batch_size):
            b = order[s : s + cfg.batch_size]
            if skip_single and len(b) == 1:
                continue
            logits = model(sampler(index_t[b]))  # (B, C)
            loss = loss_fn(logits, target_t[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += loss.item() * len(b)
            correct += int((logits.argmax(1) == target_t[b]).sum())
            seen += len(b)
        seen = max(seen, 1)
        history.append({"epoch": epoch + 1, "loss": total_loss / seen, "train_acc": 100 * correct / seen,
                        "seconds": time.perf_counter() - t0})
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{100 * correct / seen:.1f}")
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
            logits = model(sampler(index_t[s : s + batch_size]))  # (B, C)
            conf, pred = logits.softmax(dim=1).max(dim=1)
            preds.append(pred.cpu())
            confs.append(conf.cpu())
            bar.update(len(pred))
    if not preds:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    return torch.cat(preds).numpy().astype(np.int64), torch.cat(confs).numpy().astype(np.float32)
