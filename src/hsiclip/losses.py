"""Contrastive loss over curated negatives: the positive, the k_h hardest and k_s random other wrong classes.

`mine_negatives` is a pure function of the logits, so it is tested on hand-computed cases.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import LossConfig


def mine_negatives(logits: torch.Tensor, target: torch.Tensor, k_hard: int, k_semi: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Class indices (B, 1 + k_h' + k_s') per sample: [positive, hard..., semi-hard...].

    Hard negatives are the k_h largest logits among the wrong classes (eq. 3); semi-hard ones are k_s drawn
    uniformly from the wrong classes that are not hard (eq. 4). With C - 1 < k_h + k_s wrong classes, what
    exists is used: k_h' = min(k_h, C - 1), k_s' = min(k_s, C - 1 - k_h').
    """
    b, c = logits.shape
    kh = min(k_hard, c - 1)
    ks = min(k_semi, c - 1 - kh)
    positive = target.view(b, 1)
    wrong = torch.ones_like(logits, dtype=torch.bool).scatter_(1, positive, False)  # (B, C)
    neg_inf = torch.finfo(logits.dtype).min
    hard = logits.detach().masked_fill(~wrong, neg_inf).topk(kh, dim=1).indices  # (B, kh)
    remaining = wrong.scatter(1, hard, False)
    # uniform choice without replacement: the top-ks of i.i.d. uniform scores over the remaining classes
    scores = torch.rand(b, c, generator=generator, device=logits.device).masked_fill(~remaining, -1.0)
    semi = scores.topk(ks, dim=1).indices  # (B, ks)
    return torch.cat([positive, hard, semi], dim=1)


def curated_contrastive_loss(logits: torch.Tensor, target: torch.Tensor, k_hard: int, k_semi: int,
                             generator: torch.Generator | None = None) -> torch.Tensor:
    """Cross-entropy with the positive at index 0 of [s+, s_hard, s_semi] (eqs. 5-7), mean over the batch."""
    idx = mine_negatives(logits, target, k_hard, k_semi, generator)
    picked = logits.gather(1, idx)  # (B, 1 + kh + ks)
    return F.cross_entropy(picked, torch.zeros_like(target))


class ContrastiveLoss(nn.Module):
    """The loss variants: "hard+semi" (paper), "hard" (no semi-hard), "semi" (no hard), "all" (full softmax)."""

    def __init__(self, cfg: LossConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.k_hard = cfg.k_hard if cfg.negatives in ("hard+semi", "hard") else 0
        self.k_semi = cfg.k_semi if cfg.negatives in ("hard+semi", "semi") else 0

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.cfg.negatives == "all":
            return F.cross_entropy(logits, target)
        return curated_contrastive_loss(logits, target, self.k_hard, self.k_semi)
