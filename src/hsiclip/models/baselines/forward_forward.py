"""FFA + BP: a pixel-wise network trained layer by layer with Hinton's Forward-Forward, read out by a softmax layer.

Reyes & Paheding, "Forward-Forward Algorithm for Hyperspectral Image Classification", CVPR Workshops 2024,
pp. 3153-3161 (preprint: Paheding & Reyes-Angulo, arXiv 2307.00231), after Hinton, "The Forward-Forward Algorithm:
Some Preliminary Investigations", 2022. The paper under reproduction labels the row "FFA + BP".

Where each part comes from:

- The FFA-HSI paper's body and any code of its own were not reachable from our index: only its abstract (FF's
  local goodness functions instead of back-propagation, compared with a back-propagated network) and a third-party
  summary (scispace.com) saying it builds FF networks of fully connected and of 1-D convolutional layers. Its sizes,
  input and training settings are therefore not carried over; what follows is a fully connected FF network as in
  Hinton's reference recipe.
- The FF recipe is that of loeweX/Forward-Forward (a reimplementation of Hinton's reference code; src/ff_model.py,
  src/ff_mnist.py, src/utils.py, config.yaml): 3 fully connected layers of 1000 ReLU units; every layer's input
  divided by its root mean square (so only its direction is passed on); goodness = sum of squared activities,
  threshold = the layer width, per-layer loss = binary cross-entropy on goodness - width (softplus of the
  margins); each layer's input detached, so no gradient crosses layers; positive data = the input with its true
  one-hot label, negative = with a uniformly drawn wrong label; a ReLU whose gradient passes everywhere; weights
  normal with std 1/sqrt(fan_out), zero biases; peer normalisation (weight 0.03, running-mean momentum 0.9)
  keeping units equally active; batch 100, 100 epochs.
- "+ BP", our reading of the row label: Hinton's one-pass classifier, also in that code. The input with a neutral
  label (every entry 1/C) goes through the net; the normalised activities of every layer but the first feed a
  bias-free linear softmax layer (zeros at start) trained with cross-entropy by back-propagation on detached
  activities, so BP never reaches the FF layers. `forward` returns that layer's logits; `goodness` gives the
  alternative, label-by-label prediction (the label whose embedding gives the most goodness in those layers).
- Our choices: the one-hot label is concatenated to the input (the MNIST code overwrites the first pixels, which
  would erase features here); window 1 (the centre pixel); 30 whitened PCA components, the input of this package's
  per-pixel SVM and random-forest rows (on every band min-max scaled, FF's per-input RMS normalisation leaves
  spectra of different classes nearly parallel, and accuracy dropped sharply in our check); Adam at lr 1e-3 for
  everything, as this package's `fit` functions use. Not carried over: the reference's SGD (momentum 0.9), weight
  decays 3e-4 / 3e-3, 10x learning rate for the softmax layer and linear cool-down over the second half.

2,081,000 parameters on Indian Pines (30 components, 16 classes), counted from those layer sizes.

Provenance: loeweX/Forward-Forward at commit dab1c70 (src/ff_model.py, src/ff_mnist.py, config.yaml) and
9afac33 (src/utils.py); the FFA-HSI paper's abstract, arXiv 2307.00231.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ...config import TrainConfig
from ...data.windows import WindowSampler
from ...engine import Checkpoint, TrainResult
from .spec import BaselineSpec, register_baseline

PEER_WEIGHT = 0.03  # loeweX config.yaml model.peer_normalization
PEER_MOMENTUM = 0.9  # loeweX config.yaml model.momentum


def _rms_normalise(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return z / (z.pow(2).mean(dim=-1, keepdim=True).sqrt() + eps)


def _relu_full_grad(z: torch.Tensor) -> torch.Tensor:
    """ReLU forward, identity backward (units below zero still learn)."""
    return z + (z.clamp(min=0) - z).detach()


class ForwardForward(nn.Module):
    def __init__(self, bands: int, num_classes: int, window: int = 1, *, hidden: int = 1000, depth: int = 3) -> None:
        super().__init__()
        self.num_classes = num_classes
        widths = [bands + num_classes] + [hidden] * depth  # the label is appended to the spectrum
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        for layer in self.layers:
            nn.init.normal_(layer.weight, std=layer.out_features**-0.5)
            nn.init.zeros_(layer.bias)
        self.classifier = nn.Linear(hidden * (depth - 1), num_classes, bias=False)  # layers 2.. -> classes
        nn.init.zeros_(self.classifier.weight)

    def embed(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """(B, w, w, C) windows and (B, K) label vectors -> (B, C + K) centre pixels with the label appended."""
        w = x.shape[1]
        return torch.cat([x[:, w // 2, w // 2, :], label], dim=1)

    def activities(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's (B, hidden) activities, before normalisation, for embedded inputs z (B, C + K)."""
        out = []
        for layer in self.layers:
            z = _relu_full_grad(layer(_rms_normalise(z)))
            out.append(z)
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Neutral-label pass -> (B, hidden * (depth - 1)) normalised activities of every layer but the first."""
        neutral = x.new_full((x.shape[0], self.num_classes), 1 / self.num_classes)
        return torch.cat([_rms_normalise(a) for a in self.activities(self.embed(x, neutral))[1:]], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, w, w, C) -> (B, num_classes)
        return self.classifier(self.features(x))

    def goodness(self, x: torch.Tensor) -> torch.Tensor:
        """(B, num_classes): goodness summed over every layer but the first, with each label in turn."""
        eye = torch.eye(self.num_classes, device=x.device, dtype=x.dtype)
        scores = []
        for k in range(self.num_classes):
            acts = self.activities(self.embed(x, eye[k].expand(x.shape[0], -1)))
            scores.append(sum(a.pow(2).sum(dim=1) for a in acts[1:]))
        return torch.stack(scores, dim=1)


def ff_losses(model: ForwardForward, x: torch.Tensor, y: torch.Tensor,
              running: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed layer-local FF losses and peer-normalisation penalties for windows x (B, ...) with labels y (B,).

    Every layer sees its input detached; `running` holds each layer's running mean activity and is updated in place.
    """
    wrong = (y + torch.randint(1, model.num_classes, y.shape, device=y.device)) % model.num_classes
    labels = F.one_hot(torch.cat([y, wrong]), model.num_classes).to(x.dtype)  # (2B, K): positives, then negatives
    z = model.embed(torch.cat([x, x]), labels)  # (2B, C + K)
    is_positive = torch.cat([torch.ones_like(y), torch.zeros_like(y)]).to(x.dtype)
    ff, peer = x.new_zeros(()), x.new_zeros(())
    for i, layer in enumerate(model.layers):
        z = _relu_full_grad(layer(_rms_normalise(z.detach())))  # (2B, hidden)
        ff = ff + F.binary_cross_entropy_with_logits(z.pow(2).sum(dim=1) - z.shape[1], is_positive)
        running[i] = PEER_MOMENTUM * running[i].detach() + (1 - PEER_MOMENTUM) * z[: len(y)].mean(dim=0)
        peer = peer + (running[i].mean() - running[i]).pow(2).mean()
    return ff, peer


def fit(model: ForwardForward, sampler: WindowSampler, index: np.ndarray, target: np.ndarray, cfg: TrainConfig,
        progress: bool = True, checkpoint: Checkpoint | None = None) -> TrainResult:
    """Forward-Forward for the layers plus cross-entropy for the softmax layer, over shuffled mini-batches (Adam).

    Mirrors `engine.train_model`; history records the total loss, the FF part and the softmax layer's accuracy.
    """
    device = sampler.padded.device
    index_t = torch.as_tensor(index, device=device)
    target_t = torch.as_tensor(target, device=device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    running = [torch.full((layer.out_features,), 0.5, device=device) for layer in model.layers]
    n = len(index_t)
    done, history, before = checkpoint.restore(model, opt, None, running) if checkpoint else (0, [], 0.0)
    start = time.perf_counter() - before
    bar = tqdm(range(done, cfg.epochs), desc="train (FF)", unit="epoch", disable=not progress, leave=False,
               initial=done, total=cfg.epochs)
    for epoch in bar:
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(n, device=device)
        total_loss, total_ff, correct = 0.0, 0.0, 0
        for s in range(0, n, cfg.batch_size):
            b = order[s : s + cfg.batch_size]
            x, y = sampler(index_t[b]), target_t[b]
            ff, peer = ff_losses(model, x, y, running)
            with torch.no_grad():  # BP reaches the softmax layer only
                features = model.features(x)
            logits = model.classifier(features)
            loss = ff + PEER_WEIGHT * peer + F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += loss.item() * len(b)
            total_ff += ff.item() * len(b)
            correct += int((logits.argmax(1) == y).sum())
        history.append({"epoch": epoch + 1, "loss": total_loss / n, "ff_loss": total_ff / n,
                        "train_acc": 100 * correct / n, "seconds": time.perf_counter() - t0})
        bar.set_postfix(ff=f"{total_ff / n:.4f}", acc=f"{100 * correct / n:.1f}")
        if checkpoint:
            checkpoint.save(epoch + 1, cfg.epochs, model, opt, None, history, time.perf_counter() - start, running)
    return TrainResult(history, time.perf_counter() - start)


register_baseline(BaselineSpec(
    name="forward_forward",
    build=ForwardForward,
    citation="Reyes & Paheding, CVPR Workshops 2024 (FFA + BP)",
    source="paper abstract (arXiv 2307.00231); FF recipe and one-pass softmax readout from loeweX/Forward-Forward "
           "at dab1c70 (src/ff_model.py, src/ff_mnist.py, src/utils.py, config.yaml); input and optimiser our choice",
    window=1,
    pca_components={"default": 30},
    epochs=100,
    batch_size=100,
    lr=1e-3,
    fit=fit,
))
