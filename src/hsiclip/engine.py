"""Training and inference loops: explicit arguments, no globals, windows gathered per batch."""

from __future__ import annotations

import math
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


def spectral_fill(x: torch.Tensor, p: float) -> torch.Tensor:
    """A random share `p` of the (B, w, w, C) windows with every pixel replaced by the window's centre pixel."""
    pick = torch.rand(x.shape[0], device=x.device) < p  # (B,)
    if not pick.any():
        return x
    c = x.shape[1] // 2
    out = x.clone()
    out[pick] = x[pick, c : c + 1, c : c + 1].expand(-1, x.shape[1], x.shape[2], -1)
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
                progress: bool = True, val: tuple[np.ndarray, np.ndarray] | None = None) -> TrainResult:
    """Adam over shuffled mini-batches of windows around `index` (flat pixels) with labels `target` (0..C-1).

    With `cfg`'s defaults this is the paper's loop. Options beyond it: a cosine schedule with warm-up, random
    flips/rotations of the windows, windows filled with their centre pixel (`spectral_fill`), additive Gaussian noise
    (`spectral_noise`), an exponential moving average of the weights (evaluated and kept instead of the last
    weights), and `val` = (pixels, labels) held out of the training pixels: the weights of the epoch with the best
    validation accuracy are kept.

    A model with a bound `prompt_context` (CoOp, `text.context`) also learns its prompt context, once per epoch: the
    prototypes are computed through the frozen text encoder at the start of the epoch and held fixed for its steps,
    which gather their gradient; one backward pass through the encoder then gives the exact gradient of the epoch's
    summed losses with respect to the context, and its own Adam takes one step. One encoder pass per epoch instead of
    one per step: a forward and backward pass of MiniLM over 16 descriptive prompts costs roughly half an epoch of
    the flagship on one CPU thread, so one per step (16 per epoch) would make its training several times longer
    (the whole cost, measured: the context row's train s in results/flagship.md).
    """
    device = sampler.padded.device
    index_t = torch.as_tensor(index, device=device)
    target_t = torch.as_tensor(target, device=device)
    context = getattr(model, "prompt_context", None)
    own = {id(p) for p in context.parameters()} if context is not None else set()
    # foreach: one fused update over all tensors (measured ~20% faster per step than the loop on 2 CPU cores)
    opt = torch.optim.Adam([p for p in model.parameters() if id(p) not in own], lr=cfg.lr,
                           weight_decay=cfg.weight_decay, foreach=True)
    n = len(index_t)
    # A trailing batch of one sample cannot be batch-normalised: BatchNorm2d/3d would fold that one sample's
    # statistics into its running estimates every epoch (measured: the 2D-CNN baseline's eval-mode OA fell from
    # 94% to 4% on Indian Pines, 1025 training pixels in batches of 32), and BatchNorm1d refuses it. Skip it there.
    skip_single = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    steps = -(-n // cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, steps)) if cfg.schedule == "cosine" else None
    if context is not None:
        from .models.vlm import set_text_features

        ctx_opt = torch.optim.Adam(context.parameters(), lr=cfg.lr)
        factor = _lr_lambda(cfg, steps)  # the context's one step per epoch follows the schedule at the epoch's end
        ctx_sched = torch.optim.lr_scheduler.LambdaLR(ctx_opt, lambda e: factor((e + 1) * steps - 1)) \
            if cfg.schedule == "cosine" else None
    ema = None
    if cfg.ema > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
    scored = ema.module if ema is not None else model
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc="train", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(n, device=device)
        total_loss, correct, seen = 0.0, 0, 0
        if context is not None:
            prototypes = context()  # through the frozen encoder, with its graph
            held = prototypes.detach().requires_grad_()
            set_text_features(model, held)
        for s in range(0, n, cfg.batch_size):
            b = order[s : s + cfg.batch_size]
            if skip_single and len(b) == 1:
                continue
            windows = sampler(index_t[b])
            if cfg.augment:
                windows = random_dihedral(windows)
            if cfg.spectral_fill > 0:
                windows = spectral_fill(windows, cfg.spectral_fill)
            if cfg.spectral_noise > 0:
                windows = windows + cfg.spectral_noise * torch.randn_like(windows)
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
            if ema is not None:
                ema.update_parameters(model)
            total_loss += loss.item() * len(b)
            correct += int((logits.argmax(1) == target_t[b]).sum())
            seen += len(b)
        if context is not None:
            if held.grad is not None:
                prototypes.backward(held.grad)
                ctx_opt.step()
                ctx_opt.zero_grad(set_to_none=True)
                if ctx_sched is not None:
                    ctx_sched.step()
            if val is not None or epoch == cfg.epochs - 1:  # the prototypes of the updated context classify
                with torch.no_grad():
                    set_text_features(model, context())
        seen = max(seen, 1)
        record = {"epoch": epoch + 1, "loss": total_loss / seen, "train_acc": 100 * correct / seen,
                  "seconds": time.perf_counter() - t0}
        if val is not None:
            pred, _ = predict(scored, sampler, val[0], progress=False)
            record["val_acc"] = float(100 * np.mean(pred == val[1]))
            if best is None or record["val_acc"] >= best[0]:  # ties: the later epoch
                best = (record["val_acc"], epoch + 1, {k: v.detach().clone() for k, v in scored.state_dict().items()})
        history.append(record)
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{100 * correct / seen:.1f}")
    if best is not None:
        scored.load_state_dict(best[2])
        history.append({"best_epoch": best[1], "best_val_acc": best[0]})
    if ema is not None:
        model.load_state_dict(ema.module.state_dict())
    return TrainResult(history, time.perf_counter() - start)


@torch.no_grad()
def predict(model: nn.Module, sampler: WindowSampler, index: np.ndarray, batch_size: int = 1024,
            progress: bool = True, desc: str = "predict", tta: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Class (0..C-1) and softmax confidence for the windows around `index`, in batches of `batch_size`;
    `tta` averages the softmax over the 8 flips/rotations of each window."""
    model.eval()
    device = sampler.padded.device
    index_t = torch.as_tensor(index, device=device)
    preds, confs = [], []
    with tqdm(total=len(index_t), desc=desc, unit="px", unit_scale=True, disable=not progress, leave=False) as bar:
        for s in range(0, len(index_t), batch_size):
            windows = sampler(index_t[s : s + batch_size])
            if tta:
                probs = sum(model(dihedral(windows, k)).softmax(dim=1) for k in range(8)) / 8
            else:
                probs = model(windows).softmax(dim=1)  # (B, C)
            conf, pred = probs.max(dim=1)
            preds.append(pred.cpu())
            confs.append(conf.cpu())
            bar.update(len(pred))
    if not preds:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    return torch.cat(preds).numpy().astype(np.int64), torch.cat(confs).numpy().astype(np.float32)
